import type { MigrationInterface, QueryRunner } from 'typeorm';

// Signed checkpoints of the audit log (design/events.md, src/audit/checkpoint-format.ts): one
// chain per org, and one for the events of no org (org_id NULL, the service's chain). They
// outlive retention (they are small), so a purged day stays accounted for. checkpoint_signers
// keeps the public half of every key that signed one, so that checkpoints stay verifiable after
// the key itself is removed.
export class CreateAuditCheckpoints1763769601300 implements MigrationInterface {
  name = 'CreateAuditCheckpoints1763769601300';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE audit_checkpoints (
        id          uuid PRIMARY KEY,
        org_id      uuid,
        seq         integer NOT NULL CHECK (seq >= 1),
        from_at     timestamptz NOT NULL,
        to_at       timestamptz NOT NULL,
        count       integer NOT NULL,
        root        text NOT NULL,
        previous    text,
        signature   text NOT NULL,
        created_at  timestamptz NOT NULL
      )`);
    // One checkpoint per position of a chain; NULLS NOT DISTINCT makes the service's chain one chain.
    await q.query(`CREATE UNIQUE INDEX audit_checkpoints_chain_seq ON audit_checkpoints (org_id, seq) NULLS NOT DISTINCT`);
    await q.query(`CREATE INDEX audit_checkpoints_chain_to ON audit_checkpoints (org_id, to_at)`);
    await q.query(`
      CREATE TABLE checkpoint_signers (
        kid         text PRIMARY KEY,
        alg         text NOT NULL,
        public_jwk  jsonb NOT NULL,
        first_used_at timestamptz NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE checkpoint_signers`);
    await q.query(`DROP TABLE audit_checkpoints`);
  }
}
