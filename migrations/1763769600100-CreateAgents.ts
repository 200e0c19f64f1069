import type { MigrationInterface, QueryRunner } from 'typeorm';

// Agents are the OAuth clients of the provider (client_id = id).
export class CreateAgents1763769600100 implements MigrationInterface {
  name = 'CreateAgents1763769600100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE agents (
        id                          uuid PRIMARY KEY,
        org_id                      uuid NOT NULL REFERENCES orgs (id),
        name                        text NOT NULL,
        description                 text,
        owner                       text,
        status                      text NOT NULL DEFAULT 'active'
                                    CHECK (status IN ('active', 'suspended', 'decommissioned')),
        scopes                      text[] NOT NULL DEFAULT '{}',
        audiences                   text[] NOT NULL DEFAULT '{}',
        metadata                    jsonb NOT NULL DEFAULT '{}',
        access_token_ttl_seconds    integer CHECK (access_token_ttl_seconds > 0),
        created_at                  timestamptz NOT NULL DEFAULT now(),
        updated_at                  timestamptz NOT NULL DEFAULT now(),
        decommissioned_at           timestamptz
      )`);
    await q.query(`CREATE INDEX agents_org_created ON agents (org_id, created_at, id)`);
    await q.query(`CREATE INDEX agents_org_status_created ON agents (org_id, status, created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE agents`);
  }
}
