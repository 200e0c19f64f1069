import type { MigrationInterface, QueryRunner } from 'typeorm';

// Delegation (RFC 8693 token exchange, design/delegation-and-federation.md): the agents that may
// act for this one. Checked at exchange time against the current row, which the agents trigger
// already announces to every instance (`agent:<id>`), so no new notification is needed.
export class AddAgentMayAct1763769601400 implements MigrationInterface {
  name = 'AddAgentMayAct1763769601400';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE agents ADD COLUMN may_act uuid[] NOT NULL DEFAULT '{}'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE agents DROP COLUMN may_act`);
  }
}
