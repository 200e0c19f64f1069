import type { MigrationInterface, QueryRunner } from 'typeorm';

// Tokens issued, counted as they are issued (src/usage/token-counter.ts), so that usage and
// quotas never scan the audit log: per agent per minute and per hour (quotas; kept two days),
// and per org per UTC day (GET /api/v1/usage; kept 400 days).
export class CreateTokenCounts1763769601000 implements MigrationInterface {
  name = 'CreateTokenCounts1763769601000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE agent_token_counts (
        agent_id      uuid NOT NULL,
        bucket        text NOT NULL CHECK (bucket IN ('minute', 'hour')),
        bucket_start  timestamptz NOT NULL,
        tokens        bigint NOT NULL,
        PRIMARY KEY (agent_id, bucket, bucket_start)
      )`);
    await q.query(`CREATE INDEX agent_token_counts_start ON agent_token_counts (bucket_start)`);
    await q.query(`
      CREATE TABLE org_token_counts (
        org_id  uuid NOT NULL,
        day     date NOT NULL,
        tokens  bigint NOT NULL,
        PRIMARY KEY (org_id, day)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE org_token_counts`);
    await q.query(`DROP TABLE agent_token_counts`);
  }
}
