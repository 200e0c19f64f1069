import type { DataSource } from 'typeorm';
import type { Agent, ClientAgent, TokenQuota } from '../agents/agent.entity.ts';
import type { CredentialKey, CredentialSecrets } from '../credentials/credential.entity.ts';
import type { StateCache } from '../coherence/state-cache.ts';
import type { FederatedMapping, FederationMiss } from '../coherence/federation-map.ts';

// Agents as OAuth clients: the reads of every /token, introspection and revocation, answered
// from this instance's memory while it may (src/coherence) and from PostgreSQL otherwise. Only
// client authentication reads agents by id alone: a client is known by its globally unique id,
// before anyone knows its org. Every other query on agents is in agents.repository.ts.

/** The agent columns of client authentication and token checks (ClientAgent), read from `agents a JOIN orgs o`. */
const CLIENT_AGENT_COLUMNS = `a.id, a.org_id, a.status, a.scopes, a.audiences, a.access_token_ttl_seconds, a.token_quota, a.require_dpop, a.may_act::text[] AS may_act,
        (o.limits ->> 'tokensPerMinutePerAgent')::integer AS org_tokens_per_minute`;

interface ClientAgentRow {
  id: string;
  org_id: string;
  status: Agent['status'];
  scopes: string[];
  audiences: string[];
  access_token_ttl_seconds: number | null;
  token_quota: TokenQuota | null;
  require_dpop: boolean;
  may_act: string[];
  org_tokens_per_minute: number | null;
}

/** The quota in force: the agent's own bounds, the org's per-minute default where the agent sets none. */
function quotaInForce(own: TokenQuota | null, orgPerMinute: number | null): TokenQuota | null {
  const perMinute = own?.perMinute ?? orgPerMinute ?? undefined;
  const perHour = own?.perHour;
  if (perMinute === undefined && perHour === undefined) return null;
  return { ...(perMinute !== undefined ? { perMinute } : {}), ...(perHour !== undefined ? { perHour } : {}) };
}

function clientAgentFromRow(row: ClientAgentRow): ClientAgent {
  return {
    id: row.id,
    orgId: row.org_id,
    status: row.status,
    scopes: row.scopes,
    audiences: row.audiences,
    accessTokenTtlSeconds: row.access_token_ttl_seconds,
    tokenQuota: quotaInForce(row.token_quota, row.org_tokens_per_minute),
    requireDpop: row.require_dpop,
    mayAct: row.may_act,
  };
}

interface ClientWithCredentialRow extends ClientAgentRow {
  c_id: string | null;
  c_agent_id: string;
  c_status: CredentialSecrets['status'];
  c_expires_at: Date | null;
  c_secret_hash: string;
  c_previous_secret_hash: string | null;
  c_previous_expires_at: Date | null;
}

const CLIENT_WITH_CREDENTIAL_SQL = `SELECT ${CLIENT_AGENT_COLUMNS},
        c.id AS c_id, c.agent_id AS c_agent_id, c.status AS c_status, c.expires_at AS c_expires_at,
        c.secret_hash AS c_secret_hash, c.previous_secret_hash AS c_previous_secret_hash,
        c.previous_expires_at AS c_previous_expires_at
   FROM agents a JOIN orgs o ON o.id = a.org_id LEFT JOIN credentials c ON c.agent_id = a.id AND c.id = $2
  WHERE a.id = $1 AND a.status = 'active'`;

/** An active agent and all its key credentials (revoked and expired ones too: client authentication says why a key was refused). */
const CLIENT_WITH_KEYS_SQL = `SELECT ${CLIENT_AGENT_COLUMNS},
        COALESCE(json_agg(json_build_object(
          'id', c.id, 'status', c.status, 'expiresAt', c.expires_at, 'kid', c.kid, 'publicJwk', c.public_jwk,
          'previousKid', c.previous_kid, 'previousPublicJwk', c.previous_public_jwk, 'previousExpiresAt', c.previous_expires_at
        ) ORDER BY c.created_at, c.id) FILTER (WHERE c.id IS NOT NULL), '[]') AS keys
   FROM agents a JOIN orgs o ON o.id = a.org_id LEFT JOIN credentials c ON c.agent_id = a.id AND c.type = 'private_key_jwt'
  WHERE a.id = $1 AND a.status = 'active'
  GROUP BY a.id, o.limits`;

type KeyRow = Omit<CredentialKey, 'agentId' | 'expiresAt' | 'previousExpiresAt'> & { expiresAt: string | null; previousExpiresAt: string | null };

const TOKEN_STATE_SQL = `SELECT ${CLIENT_AGENT_COLUMNS},
        EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2) AS revoked,
        NOT EXISTS (SELECT 1 FROM signing_keys k WHERE k.kid = $3 AND k.status IN ('next', 'active', 'retired')) AS key_revoked
   FROM agents a JOIN orgs o ON o.id = a.org_id WHERE a.id = $1`;

/**
 * Every agent and token of a delegation chain in one round trip: the agents found (a row of
 * nulls when none is), with which of the jtis are revoked and which of the keys may still vouch.
 */
const CHAIN_STATE_SQL = `WITH revoked AS (SELECT coalesce(array_agg(r.jti), '{}') AS jtis FROM revoked_tokens r WHERE r.jti = ANY($2::text[])),
        good_keys AS (SELECT coalesce(array_agg(k.kid), '{}') AS kids FROM signing_keys k WHERE k.kid = ANY($3::text[]) AND k.status IN ('next', 'active', 'retired'))
 SELECT ${CLIENT_AGENT_COLUMNS}, revoked.jtis AS revoked_jtis, good_keys.kids AS good_kids
   FROM revoked CROSS JOIN good_keys LEFT JOIN (agents a JOIN orgs o ON o.id = a.org_id) ON a.id = ANY($1::uuid[])`;

/** A token of a delegation chain: its jti and the key that signed it. */
export interface ChainToken {
  jti: string;
  kid: string;
}

/** What holds now of a delegation chain's agents and tokens (ClientStore.chainState). */
export interface ChainState {
  /** The chain's agents that exist, by id, in any state. */
  agents: Map<string, ClientAgent>;
  /** A token of the chain is revoked. */
  revoked: boolean;
  /** A key that signed a token of the chain is revoked. */
  keyRevoked: boolean;
}
/** The agent an (issuer, subject) is mapped to, whatever its state, with the mapping's audience. */
const FEDERATED_SQL = `SELECT ${CLIENT_AGENT_COLUMNS}, f.audience AS f_audience
   FROM federated_identities f JOIN agents a ON a.id = f.agent_id JOIN orgs o ON o.id = a.org_id
  WHERE f.issuer = $1 AND f.subject = $2`;

export interface TokenSubjectState {
  agentStatus: string;
  agentOrgId: string;
  /** The jti is revoked. */
  revoked: boolean;
  /** The key that signed it is revoked (read here too, so that every instance agrees at once). */
  keyRevoked: boolean;
  /** The scopes the agent holds now (a token's scopes count only while the agent still holds them). */
  agentScopes: string[];
  /** The agent as read (a token exchange checks its mayAct and audiences without another read). */
  agent: ClientAgent;
}

export class ClientStore {
  readonly #ds: DataSource;
  readonly #cache: StateCache | undefined;

  /** With `cache`, answers from memory while the cache may (src/coherence); without, reads every time. */
  constructor(dataSource: DataSource, cache?: StateCache) {
    this.#ds = dataSource;
    this.#cache = cache;
  }

  /**
   * Client authentication in one round trip: the active agent and the credential its presented
   * secret names (null when there is none of that id for this agent, or no id was given).
   */
  async findActiveWithCredential(id: string, credentialId: string | undefined): Promise<{ agent: ClientAgent; credential: CredentialSecrets | null } | null> {
    const cache = this.#cache;
    if (cache && credentialId) {
      const agent = cache.agents.get(id);
      const credential = agent && cache.credentials.get(credentialId);
      if (agent && credential && credential.agentId === id) return { agent, credential };
    }
    const ticket = cache?.ticket();
    const rows: ClientWithCredentialRow[] = await this.#ds.query(CLIENT_WITH_CREDENTIAL_SQL, [id, credentialId ?? null]);
    if (!rows.length) return null;
    const row = rows[0];
    const agent = clientAgentFromRow(row);
    const credential: CredentialSecrets | null = row.c_id
      ? {
          id: row.c_id,
          // The agent's id string itself (the join makes them equal): one copy per agent in memory, not two.
          agentId: agent.id,
          status: row.c_status,
          expiresAt: row.c_expires_at,
          secretHash: row.c_secret_hash,
          previousSecretHash: row.c_previous_secret_hash,
          previousExpiresAt: row.c_previous_expires_at,
        }
      : null;
    if (cache && ticket !== undefined) {
      cache.agents.set(id, agent, ticket);
      if (credential) cache.credentials.set(credential.id, credential, ticket);
    }
    return { agent, credential };
  }

  /** Client authentication with a key: the active agent and its key credentials, whatever their state. */
  async findActiveWithKeys(id: string): Promise<{ agent: ClientAgent; keys: CredentialKey[] } | null> {
    const cache = this.#cache;
    if (cache) {
      const agent = cache.agents.get(id);
      const keys = agent && cache.agentKeys.get(id);
      if (agent && keys) return { agent, keys };
    }
    const ticket = cache?.ticket();
    const rows: (ClientAgentRow & { keys: KeyRow[] })[] = await this.#ds.query(CLIENT_WITH_KEYS_SQL, [id]);
    if (!rows.length) return null;
    const agent = clientAgentFromRow(rows[0]);
    const keys: CredentialKey[] = rows[0].keys.map((k) => ({
      ...k,
      agentId: id,
      expiresAt: k.expiresAt === null ? null : new Date(k.expiresAt),
      previousExpiresAt: k.previousExpiresAt === null ? null : new Date(k.previousExpiresAt),
    }));
    if (cache && ticket !== undefined) {
      cache.agents.set(id, agent, ticket);
      cache.agentKeys.set(id, keys, ticket);
    }
    return { agent, keys };
  }

  /**
   * jwt-bearer (RFC 7523 §2.1): the agent an external (issuer, subject) is mapped to, in any org
   * and any state, or why there is none. From memory while the cache may answer (a change of the
   * mapping or of the agent drops it on every instance before the change is acknowledged:
   * coherence/federation-map.ts), else one indexed query (two for a miss).
   */
  async findFederated(issuer: string, subject: string): Promise<FederatedMapping | FederationMiss> {
    const cache = this.#cache;
    const cached = cache?.federation.get(issuer, subject);
    if (cached !== undefined) return cached;
    const ticket = cache?.ticket();
    const rows: (ClientAgentRow & { f_audience: string | null })[] = await this.#ds.query(FEDERATED_SQL, [issuer, subject]);
    let found: FederatedMapping | FederationMiss;
    if (rows.length) {
      found = { agent: clientAgentFromRow(rows[0]), identity: { issuer, subject, audience: rows[0].f_audience } };
    } else {
      // Told apart for token.denied only: the caller gets one answer for both.
      const known: { known: boolean }[] = await this.#ds.query('SELECT EXISTS (SELECT 1 FROM federated_identities WHERE issuer = $1) AS known', [issuer]);
      found = known[0]?.known === true ? 'unknown_subject' : 'unknown_issuer';
    }
    if (cache && ticket !== undefined) cache.federation.set(issuer, subject, found, ticket);
    return found;
  }

  /** Any agent by id, whatever its state: to tell why a client could not authenticate (audit). */
  async findForDenial(id: string): Promise<Pick<Agent, 'id' | 'orgId' | 'status'> | null> {
    const rows: { id: string; org_id: string; status: Agent['status'] }[] = await this.#ds.query('SELECT id, org_id, status FROM agents WHERE id = $1', [id]);
    return rows.length ? { id: rows[0].id, orgId: rows[0].org_id, status: rows[0].status } : null;
  }

  /** The token's agent, and whether its jti or its key is revoked, in one round trip; undefined for an unknown agent. */
  async tokenState(agentId: string, jti: string, kid: string): Promise<TokenSubjectState | undefined> {
    const cache = this.#cache;
    if (cache) {
      // Only an active agent is cached; anything else is read (and answers inactive).
      const agent = cache.agents.get(agentId);
      const revoked = agent && cache.jtis.get(jti);
      const keyGood = revoked !== undefined ? cache.keys.get(kid) : undefined;
      if (agent && revoked !== undefined && keyGood !== undefined) {
        return { agentStatus: agent.status, agentOrgId: agent.orgId, revoked, keyRevoked: !keyGood, agentScopes: agent.scopes, agent };
      }
    }
    const ticket = cache?.ticket();
    const rows: (ClientAgentRow & { revoked: boolean; key_revoked: boolean })[] = await this.#ds.query(TOKEN_STATE_SQL, [agentId, jti, kid]);
    const row = rows[0];
    if (!row) return undefined;
    const agent = clientAgentFromRow(row);
    if (cache && ticket !== undefined) {
      if (row.status === 'active') cache.agents.set(agentId, agent, ticket);
      cache.jtis.set(jti, row.revoked, ticket);
      cache.keys.set(kid, !row.key_revoked, ticket);
    }
    return { agentStatus: row.status, agentOrgId: row.org_id, revoked: row.revoked, keyRevoked: row.key_revoked, agentScopes: row.scopes, agent };
  }

  /**
   * tokenState for an exchanged token (RFC 8693): every agent of its chain (subject and actors)
   * and every token up it, from the same coherent memory (cache.agents, cache.jtis, cache.keys),
   * else in one round trip. A revocation or suspension anywhere up the chain is heard through
   * the notifications those entries already have, so the cascade holds on every instance at once.
   */
  async chainState(agentIds: string[], tokens: ChainToken[]): Promise<ChainState> {
    const cache = this.#cache;
    if (cache) {
      const agents = new Map<string, ClientAgent>();
      let complete = true;
      for (const id of agentIds) {
        const agent = cache.agents.get(id);
        if (!agent) {
          complete = false;
          break;
        }
        agents.set(id, agent);
      }
      let revoked = false;
      let keyRevoked = false;
      for (const { jti, kid } of complete ? tokens : []) {
        const jtiRevoked = cache.jtis.get(jti);
        const keyGood = cache.keys.get(kid);
        if (jtiRevoked === undefined || keyGood === undefined) {
          complete = false;
          break;
        }
        revoked ||= jtiRevoked;
        keyRevoked ||= !keyGood;
      }
      if (complete) return { agents, revoked, keyRevoked };
    }
    const ticket = cache?.ticket();
    const jtis = tokens.map((t) => t.jti);
    const kids = [...new Set(tokens.map((t) => t.kid))];
    const rows: ((ClientAgentRow & { id: string | null }) & { revoked_jtis: string[]; good_kids: string[] })[] = await this.#ds.query(CHAIN_STATE_SQL, [
      agentIds,
      jtis,
      kids,
    ]);
    const revokedJtis = new Set(rows[0]?.revoked_jtis ?? []);
    const goodKids = new Set(rows[0]?.good_kids ?? []);
    const agents = new Map<string, ClientAgent>();
    for (const row of rows) {
      if (row.id === null) continue;
      const agent = clientAgentFromRow(row);
      agents.set(row.id, agent);
      if (cache && ticket !== undefined && row.status === 'active') cache.agents.set(row.id, agent, ticket);
    }
    if (cache && ticket !== undefined) {
      for (const jti of jtis) cache.jtis.set(jti, revokedJtis.has(jti), ticket);
      for (const kid of kids) cache.keys.set(kid, goodKids.has(kid), ticket);
    }
    return { agents, revoked: jtis.some((j) => revokedJtis.has(j)), keyRevoked: kids.some((k) => !goodKids.has(k)) };
  }
}
