import type { MigrationInterface, QueryRunner } from 'typeorm';

// Federation (RFC 7523 §2.1, design/delegation-and-federation.md): a JWT from `issuer` whose
// `sub` is `subject` may be exchanged for the tokens of agent_id. One (issuer, subject) maps to
// at most one agent in the whole service, whichever org holds it, so the pair is unique here
// (409 at the API). audience NULL means this IdP's issuer URL. A change is announced as
// `agent:<agent id>`, as a change of the agent itself, so that what an instance remembers of
// the agent drops at once.
export class CreateFederatedIdentities1763769601500 implements MigrationInterface {
  name = 'CreateFederatedIdentities1763769601500';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE federated_identities (
        agent_id   uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
        org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
        position   integer NOT NULL,
        issuer     text NOT NULL,
        subject    text NOT NULL,
        audience   text,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (agent_id, position),
        CONSTRAINT federated_identities_issuer_subject UNIQUE (issuer, subject)
      )`);
    await q.query(
      `CREATE TRIGGER federated_identities_notify_state AFTER INSERT OR UPDATE OR DELETE ON federated_identities
         FOR EACH ROW EXECUTE FUNCTION agent_idp_notify_state('agent', 'agent_id')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER federated_identities_notify_state ON federated_identities`);
    await q.query(`DROP TABLE federated_identities`);
  }
}
