import type { DataSource } from 'typeorm';
import type { StateCache } from '../coherence/state-cache.ts';
import { CLIENT_AGENT_COLUMNS, clientAgentFromRow, type ClientAgentRow } from '../agents/agents.repository.ts';

const STATE_SQL = `SELECT ${CLIENT_AGENT_COLUMNS},
        EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2) AS revoked,
        NOT EXISTS (SELECT 1 FROM signing_keys k WHERE k.kid = $3 AND k.status IN ('next', 'active', 'retired')) AS key_revoked
   FROM agents a WHERE a.id = $1`;

export interface TokenSubjectState {
  agentStatus: string;
  agentOrgId: string;
  /** The jti is revoked. */
  revoked: boolean;
  /** The key that signed it is revoked (read here too, so that every instance agrees at once). */
  keyRevoked: boolean;
  /** The scopes the agent holds now (a token's scopes count only while the agent still holds them). */
  agentScopes: string[];
}

// Revoked jtis, and the one read that decides whether a token is still good.
export class TokensRepository {
  readonly #ds: DataSource;
  readonly #cache: StateCache | undefined;

  /** With `cache`, state() answers from memory while the cache may (src/coherence). */
  constructor(dataSource: DataSource, cache?: StateCache) {
    this.#ds = dataSource;
    this.#cache = cache;
  }

  /** The token's agent, and whether its jti or its key is revoked, in one round trip; undefined for an unknown agent. */
  async state(agentId: string, jti: string, kid: string): Promise<TokenSubjectState | undefined> {
    const cache = this.#cache;
    if (cache) {
      // Only an active agent is cached; anything else is read (and answers inactive).
      const agent = cache.agents.get(agentId);
      const revoked = agent && cache.jtis.get(jti);
      const keyGood = revoked !== undefined ? cache.keys.get(kid) : undefined;
      if (agent && revoked !== undefined && keyGood !== undefined) {
        return { agentStatus: agent.status, agentOrgId: agent.orgId, revoked, keyRevoked: !keyGood, agentScopes: agent.scopes };
      }
    }
    const ticket = cache?.ticket();
    const rows: (ClientAgentRow & { revoked: boolean; key_revoked: boolean })[] = await this.#ds.query(STATE_SQL, [agentId, jti, kid]);
    const row = rows[0];
    if (!row) return undefined;
    if (cache && ticket !== undefined) {
      if (row.status === 'active') cache.agents.set(agentId, clientAgentFromRow(row), ticket);
      cache.jtis.set(jti, row.revoked, ticket);
      cache.keys.set(kid, !row.key_revoked, ticket);
    }
    return { agentStatus: row.status, agentOrgId: row.org_id, revoked: row.revoked, keyRevoked: row.key_revoked, agentScopes: row.scopes };
  }

  async revoke(jti: string, agentId: string, orgId: string, expiresAt: Date): Promise<void> {
    await this.#ds.query(`INSERT INTO revoked_tokens (jti, agent_id, org_id, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING`, [
      jti,
      agentId,
      orgId,
      expiresAt,
    ]);
  }

  /** Drops revocations of tokens that have expired anyway. Returns how many. */
  async purgeExpired(): Promise<number> {
    const [, count]: [unknown[], number] = await this.#ds.query(`DELETE FROM revoked_tokens WHERE expires_at < now()`);
    return count;
  }
}
