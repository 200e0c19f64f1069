import type { MigrationInterface, QueryRunner } from 'typeorm';

// What instances may cache of the state that decides whether a client authenticates or a token
// is active (agents, credentials, signing keys, revoked jtis), and how they hear of its changes.
// Every change to those rows, whoever makes it (agent-idp or an operator's SQL), sends
// `<kind>:<id>` on the `agent_idp_state` channel when it commits. agent_idp_instances holds one
// row per running instance with a lease: an instance may answer from its cache only while its
// lease holds and its LISTEN connection is up, and a writer waits until every instance with a
// lease has confirmed a change before it answers (src/coherence).
export class CreateStateNotifications1763769600600 implements MigrationInterface {
  name = 'CreateStateNotifications1763769600600';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE agent_idp_instances (
        id           uuid PRIMARY KEY,
        lease_until  timestamptz NOT NULL,
        started_at   timestamptz NOT NULL DEFAULT now(),
        host         text
      )`);
    // TG_ARGV: the kind of state, and the column that names the row.
    await q.query(`
      CREATE FUNCTION agent_idp_notify_state() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        row_ jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
      BEGIN
        PERFORM pg_notify('agent_idp_state', TG_ARGV[0] || ':' || (row_ ->> TG_ARGV[1]));
        RETURN NULL;
      END $$`);
    for (const [table, kind, column, events] of [
      ['agents', 'agent', 'id', 'INSERT OR UPDATE OR DELETE'],
      ['credentials', 'credential', 'id', 'INSERT OR UPDATE OR DELETE'],
      ['signing_keys', 'key', 'kid', 'INSERT OR UPDATE OR DELETE'],
      // A revocation is never undone; purging it after the token's expiry changes no answer.
      ['revoked_tokens', 'jti', 'jti', 'INSERT OR UPDATE'],
    ]) {
      await q.query(
        `CREATE TRIGGER ${table}_notify_state AFTER ${events} ON ${table}
           FOR EACH ROW EXECUTE FUNCTION agent_idp_notify_state('${kind}', '${column}')`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['agents', 'credentials', 'signing_keys', 'revoked_tokens']) {
      await q.query(`DROP TRIGGER ${table}_notify_state ON ${table}`);
    }
    await q.query(`DROP FUNCTION agent_idp_notify_state()`);
    await q.query(`DROP TABLE agent_idp_instances`);
  }
}
