import type { MigrationInterface, QueryRunner } from 'typeorm';

// A federated identity's change is announced as `agent:<agent id>` (migrations/1763769601500),
// and instances keep (issuer, subject) → agent in memory, dropped by that announcement
// (src/coherence/federation-map.ts). The trigger names the row after the change, so an UPDATE
// that moves a row to another agent_id (an operator's SQL; agent-idp deletes and inserts) would
// announce only the new agent, and the instances would go on minting the old agent's tokens for
// that identity. This trigger announces the previous agent as well.
export class NotifyFederatedIdentityPreviousAgent1763769601600 implements MigrationInterface {
  name = 'NotifyFederatedIdentityPreviousAgent1763769601600';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION agent_idp_notify_previous_agent() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('agent_idp_state', 'agent:' || OLD.agent_id);
        RETURN NULL;
      END $$`);
    await q.query(
      `CREATE TRIGGER federated_identities_notify_previous_agent AFTER UPDATE OF agent_id ON federated_identities
         FOR EACH ROW WHEN (OLD.agent_id IS DISTINCT FROM NEW.agent_id) EXECUTE FUNCTION agent_idp_notify_previous_agent()`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER federated_identities_notify_previous_agent ON federated_identities`);
    await q.query(`DROP FUNCTION agent_idp_notify_previous_agent()`);
  }
}
