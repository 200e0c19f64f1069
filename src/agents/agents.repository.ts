import type { DataSource, EntityManager } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { AgentEntity, type Agent, type AgentStatus, type ClientAgent } from './agent.entity.ts';
import { offsetOf, type PageRequest } from '../db/pagination.ts';
import type { CredentialSecrets } from '../credentials/credential.entity.ts';
import type { StateCache } from '../coherence/state-cache.ts';

/** The agent columns of client authentication and token checks (ClientAgent). */
export const CLIENT_AGENT_COLUMNS = 'a.id, a.org_id, a.status, a.scopes, a.audiences, a.access_token_ttl_seconds';

export interface ClientAgentRow {
  id: string;
  org_id: string;
  status: Agent['status'];
  scopes: string[];
  audiences: string[];
  access_token_ttl_seconds: number | null;
}

export function clientAgentFromRow(row: ClientAgentRow): ClientAgent {
  return {
    id: row.id,
    orgId: row.org_id,
    status: row.status,
    scopes: row.scopes,
    audiences: row.audiences,
    accessTokenTtlSeconds: row.access_token_ttl_seconds,
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
   FROM agents a LEFT JOIN credentials c ON c.agent_id = a.id AND c.id = $2
  WHERE a.id = $1 AND a.status = 'active'`;

// Every query on tenant data takes the org id and puts it in the WHERE; the exceptions,
// findActiveWithCredential and findForDenial, serve client authentication, which knows a client
// only by its globally unique id.
export class AgentsRepository {
  readonly #ds: DataSource;
  readonly #cache: StateCache | undefined;

  /** With `cache`, client authentication reads from memory while the cache may answer (src/coherence). */
  constructor(dataSource: DataSource, cache?: StateCache) {
    this.#ds = dataSource;
    this.#cache = cache;
  }

  #repo(manager?: EntityManager) {
    return (manager ?? this.#ds.manager).getRepository(AgentEntity);
  }

  async insert(agent: Agent, manager?: EntityManager): Promise<void> {
    // metadata is free-form JSON, which TypeORM's deep-partial type cannot express.
    await this.#repo(manager).insert(agent as QueryDeepPartialEntity<Agent>);
  }

  async findInOrg(orgId: string, id: string, manager?: EntityManager): Promise<Agent | null> {
    return this.#repo(manager).findOneBy({ orgId, id });
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
          agentId: row.c_agent_id,
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

  /** Any agent by id, whatever its state: to tell why a client could not authenticate (audit). */
  async findForDenial(id: string): Promise<Pick<Agent, 'id' | 'orgId' | 'status'> | null> {
    return this.#repo().findOne({ where: { id }, select: { id: true, orgId: true, status: true } });
  }

  async list(orgId: string, filter: { status?: AgentStatus }, page: PageRequest): Promise<{ rows: Agent[]; total: number }> {
    const [rows, total] = await this.#repo().findAndCount({
      where: { orgId, ...(filter.status ? { status: filter.status } : {}) },
      order: { createdAt: 'ASC', id: 'ASC' },
      skip: offsetOf(page),
      take: page.limit,
    });
    return { rows, total };
  }

  async update(orgId: string, id: string, changes: Partial<Agent>, manager?: EntityManager): Promise<void> {
    await this.#repo(manager).update({ orgId, id }, changes as QueryDeepPartialEntity<Agent>);
  }
}
