import type { MigrationInterface, QueryRunner } from 'typeorm';

// The management API's audience (`<PUBLIC_URL>/api/v1`) used to be stored in the audiences of
// the bootstrap operator and of every org's first admin, so a new PUBLIC_URL locked them out.
// It is now implied by the management scopes and never stored (src/policies/grants.ts); this
// removes the stored copies.
//
// The old PUBLIC_URL is not known here, so the stored copy is recognised by its shape: an
// http(s) audience whose path ends in `/api/v1`, on an agent that holds a management scope
// (agents:read, agents:write, audit:read, keys:*, orgs:*). Limit: such an agent's audience for
// another API whose URL also ends in `/api/v1` is removed too, and an old management audience
// on an agent without a management scope stays (its tokens could not use that API anyway).
// Each changed agent's audiences as they were are kept in removed_management_audiences, so that
// an entry removed by mistake can be registered again (PATCH) and `down` puts them back.
// The scopes as they are at this migration (a migration does not follow later code).
const MANAGEMENT_SCOPES = `ARRAY['agents:read', 'agents:write', 'audit:read', 'keys:read', 'keys:write', 'orgs:read', 'orgs:write']::text[]`;
const MANAGEMENT_AUDIENCE = `'^https?://[^?#]*/api/v1$'`;
/** a.audiences without the removed entries of r, in order. */
const REMAINING = `ARRAY(SELECT u.audience FROM unnest(a.audiences) WITH ORDINALITY AS u(audience, ordinal)
                            WHERE u.audience <> ALL (r.removed) ORDER BY u.ordinal)`;

export class UnstoreManagementAudience1763769600700 implements MigrationInterface {
  name = 'UnstoreManagementAudience1763769600700';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE removed_management_audiences (
        agent_id          uuid PRIMARY KEY,
        audiences_before  text[] NOT NULL,
        removed           text[] NOT NULL,
        removed_at        timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      INSERT INTO removed_management_audiences (agent_id, audiences_before, removed)
      SELECT a.id, a.audiences,
             ARRAY(SELECT u.audience FROM unnest(a.audiences) WITH ORDINALITY AS u(audience, ordinal)
                    WHERE u.audience ~ ${MANAGEMENT_AUDIENCE} ORDER BY u.ordinal)
        FROM agents a
       WHERE a.scopes && ${MANAGEMENT_SCOPES}
         AND EXISTS (SELECT 1 FROM unnest(a.audiences) AS u(audience) WHERE u.audience ~ ${MANAGEMENT_AUDIENCE})`);
    await q.query(`
      UPDATE agents a
         SET audiences = ${REMAINING}
        FROM removed_management_audiences r
       WHERE r.agent_id = a.id`);
  }

  async down(q: QueryRunner): Promise<void> {
    // An agent whose audiences did not change since gets exactly what it had; one that changed
    // gets the removed entries back in front, where bootstrap and org creation had put them.
    await q.query(`
      UPDATE agents a
         SET audiences = CASE
               WHEN a.audiences = ${REMAINING.replaceAll('a.audiences', 'r.audiences_before')} THEN r.audiences_before
               ELSE r.removed || ${REMAINING}
             END
        FROM removed_management_audiences r
       WHERE r.agent_id = a.id`);
    await q.query(`DROP TABLE removed_management_audiences`);
  }
}
