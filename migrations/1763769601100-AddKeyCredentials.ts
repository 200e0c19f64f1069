import type { MigrationInterface, QueryRunner } from 'typeorm';

// Key-pair credentials (design/keys-and-dpop.md): a credential is a client secret (bcrypt hash)
// or a public key an agent signs its client assertions with (RFC 7523 private_key_jwt). Only the
// public half is ever stored. A rotation keeps the replaced key beside the new one until
// previous_expires_at, as it keeps a replaced secret's hash. Client authentication reads an
// agent's keys together, so a change of any credential also announces `agentkeys:<agent id>`.
// `require_dpop`: the agent's tokens must be DPoP-bound (RFC 9449). `replay_ids`: client
// assertion and DPoP proof ids seen, each kept while the JWT that carried it could be valid,
// so that no instance accepts one twice.
export class AddKeyCredentials1763769601100 implements MigrationInterface {
  name = 'AddKeyCredentials1763769601100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE credentials
      ADD COLUMN type text NOT NULL DEFAULT 'secret' CHECK (type IN ('secret', 'private_key_jwt')),
      ADD COLUMN name text,
      ADD COLUMN kid text,
      ADD COLUMN alg text,
      ADD COLUMN public_jwk jsonb,
      ADD COLUMN generated boolean,
      ADD COLUMN previous_kid text,
      ADD COLUMN previous_public_jwk jsonb,
      ALTER COLUMN secret_hash DROP NOT NULL`);
    await q.query(`ALTER TABLE credentials ADD CONSTRAINT credentials_type_fields CHECK (
      (type = 'secret' AND secret_hash IS NOT NULL AND public_jwk IS NULL)
      OR (type = 'private_key_jwt' AND secret_hash IS NULL AND public_jwk IS NOT NULL AND kid IS NOT NULL AND alg IS NOT NULL))`);
    await q.query(`CREATE UNIQUE INDEX credentials_agent_name ON credentials (agent_id, name) WHERE name IS NOT NULL`);
    await q.query(`CREATE INDEX credentials_agent_keys ON credentials (agent_id) WHERE type = 'private_key_jwt'`);
    await q.query(
      `CREATE TRIGGER credentials_notify_agent_keys AFTER INSERT OR UPDATE OR DELETE ON credentials
         FOR EACH ROW EXECUTE FUNCTION agent_idp_notify_state('agentkeys', 'agent_id')`,
    );
    await q.query(`ALTER TABLE agents ADD COLUMN require_dpop boolean NOT NULL DEFAULT false`);
    await q.query(`CREATE TABLE replay_ids (id text PRIMARY KEY, expires_at timestamptz NOT NULL)`);
    await q.query(`CREATE INDEX replay_ids_expires_at ON replay_ids (expires_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE replay_ids`);
    await q.query(`ALTER TABLE agents DROP COLUMN require_dpop`);
    await q.query(`DROP TRIGGER credentials_notify_agent_keys ON credentials`);
    await q.query(`DELETE FROM credentials WHERE type <> 'secret'`);
    await q.query(`ALTER TABLE credentials DROP CONSTRAINT credentials_type_fields`);
    await q.query(`DROP INDEX credentials_agent_keys`);
    await q.query(`DROP INDEX credentials_agent_name`);
    await q.query(`ALTER TABLE credentials
      ALTER COLUMN secret_hash SET NOT NULL,
      DROP COLUMN previous_public_jwk,
      DROP COLUMN previous_kid,
      DROP COLUMN generated,
      DROP COLUMN public_jwk,
      DROP COLUMN alg,
      DROP COLUMN kid,
      DROP COLUMN name,
      DROP COLUMN type`);
  }
}
