import type { MigrationInterface, QueryRunner } from 'typeorm';

// Tenants. The root org (is_root) holds the operators of the whole service.
export class CreateOrgs1763769600000 implements MigrationInterface {
  name = 'CreateOrgs1763769600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE orgs (
        id          uuid PRIMARY KEY,
        name        text NOT NULL,
        is_root     boolean NOT NULL DEFAULT false,
        created_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT orgs_name_key UNIQUE (name)
      )`);
    // At most one root org.
    await q.query(`CREATE UNIQUE INDEX orgs_one_root ON orgs (is_root) WHERE is_root`);
    await q.query(`CREATE INDEX orgs_created_at ON orgs (created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE orgs`);
  }
}
