import type { MigrationInterface, QueryRunner } from 'typeorm';

// Client secrets, stored only as bcrypt hashes. A rotation keeps the id and moves the old hash
// to previous_secret_hash until previous_expires_at (the grace period).
export class CreateCredentials1763769600200 implements MigrationInterface {
  name = 'CreateCredentials1763769600200';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE credentials (
        id                    uuid PRIMARY KEY,
        agent_id              uuid NOT NULL REFERENCES agents (id),
        org_id                uuid NOT NULL REFERENCES orgs (id),
        secret_hash           text NOT NULL,
        previous_secret_hash  text,
        previous_expires_at   timestamptz,
        status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
        created_at            timestamptz NOT NULL DEFAULT now(),
        expires_at            timestamptz,
        rotated_at            timestamptz,
        revoked_at            timestamptz,
        CONSTRAINT credentials_hash_is_bcrypt CHECK (secret_hash LIKE '$2%')
      )`);
    await q.query(`CREATE INDEX credentials_agent_created ON credentials (agent_id, created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE credentials`);
  }
}
