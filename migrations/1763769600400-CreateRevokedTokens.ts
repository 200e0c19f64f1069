import type { MigrationInterface, QueryRunner } from 'typeorm';

// RFC 7009 revocations of JWT access tokens, by jti, kept until the token would have expired
// anyway (then purged): introspection and the management API's bearer check read it on every
// call, so a revocation acknowledged by one instance holds on all of them.
export class CreateRevokedTokens1763769600400 implements MigrationInterface {
  name = 'CreateRevokedTokens1763769600400';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE revoked_tokens (
        jti         text PRIMARY KEY,
        agent_id    uuid NOT NULL REFERENCES agents (id),
        org_id      uuid NOT NULL REFERENCES orgs (id),
        expires_at  timestamptz NOT NULL,
        revoked_at  timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE revoked_tokens`);
  }
}
