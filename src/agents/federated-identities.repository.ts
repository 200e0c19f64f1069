import type { DataSource, EntityManager } from 'typeorm';
import type { FederatedIdentity } from './agent.entity.ts';

// An agent's federated identities (RFC 7523 §2.1): the external (issuer, subject) pairs whose
// JWTs are exchanged for its tokens. Every query on tenant data takes the org id; the lookup of
// /token by (issuer, subject) alone, before any org is known, is in oauth/client-store.ts.
// Every change is announced as `agent:<agent id>` (migrations/1763769601500; a row moved to another
// agent announces both, 1763769601600).

/** The unique constraint of (issuer, subject): its violation is a pair another agent holds. */
export const ISSUER_SUBJECT_CONSTRAINT = 'federated_identities_issuer_subject';

interface IdentityRow {
  agent_id: string;
  issuer: string;
  subject: string;
  audience: string | null;
}

export class FederatedIdentitiesRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  /** The identities of each agent given, in the order they were registered. */
  async listOf(orgId: string, agentIds: string[], manager?: EntityManager): Promise<Map<string, FederatedIdentity[]>> {
    const out = new Map<string, FederatedIdentity[]>(agentIds.map((id) => [id, []]));
    if (!agentIds.length) return out;
    const rows: IdentityRow[] = await (manager ?? this.#ds.manager).query(
      `SELECT agent_id, issuer, subject, audience FROM federated_identities
        WHERE org_id = $1 AND agent_id = ANY($2::uuid[]) ORDER BY agent_id, position`,
      [orgId, agentIds],
    );
    for (const row of rows) out.get(row.agent_id)?.push({ issuer: row.issuer, subject: row.subject, audience: row.audience });
    return out;
  }

  /** Replaces the agent's identities with these, in this order. */
  async replace(orgId: string, agentId: string, identities: FederatedIdentity[], manager: EntityManager): Promise<void> {
    await manager.query('DELETE FROM federated_identities WHERE org_id = $1 AND agent_id = $2', [orgId, agentId]);
    if (!identities.length) return;
    await manager.query(
      `INSERT INTO federated_identities (agent_id, org_id, position, issuer, subject, audience)
       SELECT $1, $2, i.position, i.issuer, i.subject, i.audience
         FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS i(issuer, subject, audience, position)`,
      [agentId, orgId, identities.map((i) => i.issuer), identities.map((i) => i.subject), identities.map((i) => i.audience)],
    );
  }

  /** Drops every identity of the agent (decommission: it federates no more). */
  async removeAll(orgId: string, agentId: string, manager: EntityManager): Promise<void> {
    await manager.query('DELETE FROM federated_identities WHERE org_id = $1 AND agent_id = $2', [orgId, agentId]);
  }
}
