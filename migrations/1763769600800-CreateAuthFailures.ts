import type { MigrationInterface, QueryRunner } from 'typeorm';

// Failed client authentications, counted per (client id, IP) and per IP, shared by every
// instance so that spreading attempts over replicas gains an attacker nothing
// (src/throttling/auth-throttle.ts). One row per key; a window starts at its first failure and
// a failure after the window has passed starts a new one. Rows whose window has passed are
// purged.
export class CreateAuthFailures1763769600800 implements MigrationInterface {
  name = 'CreateAuthFailures1763769600800';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE auth_failures (
        key                text PRIMARY KEY,
        window_started_at  timestamptz NOT NULL,
        failures           integer NOT NULL CHECK (failures > 0)
      )`);
    await q.query(`CREATE INDEX auth_failures_window ON auth_failures (window_started_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE auth_failures`);
  }
}
