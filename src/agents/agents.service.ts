import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Agent, AgentStatus, TokenQuota } from './agent.entity.ts';
import type { AgentsRepository } from './agents.repository.ts';
import type { OrgsRepository } from '../orgs/orgs.repository.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import { Conflict, NotFound, ValidationFailed } from '../http/errors.ts';
import type { Actor } from '../http/actor.ts';
import { assertGrantableScopes, assertRegistrableAudiences } from '../policies/grants.ts';
import { assertBelowLimit } from '../policies/limits.ts';
import type { PageRequest } from '../db/pagination.ts';

export interface AgentInput {
  name: string;
  description?: string | null;
  owner?: string | null;
  scopes?: string[];
  audiences?: string[];
  metadata?: Record<string, unknown>;
  accessTokenTtlSeconds?: number | null;
  tokenQuota?: TokenQuota | null;
  requireDpop?: boolean;
  mayAct?: string[];
}

export interface AgentChanges extends Partial<AgentInput> {
  status?: 'active' | 'suspended';
}

export class AgentsService {
  readonly #ds: DataSource;
  readonly #repo: AgentsRepository;
  readonly #credentials: Pick<CredentialsService, 'revokeAllOfAgent'>;
  readonly #orgs: Pick<OrgsRepository, 'lockById'>;
  /** `<issuer>/api/v1` and `<issuer>/mcp`, which no agent registers (policies/grants.ts). */
  readonly #managementAudiences: string[];

  constructor(
    dataSource: DataSource,
    repo: AgentsRepository,
    credentials: Pick<CredentialsService, 'revokeAllOfAgent'>,
    orgs: Pick<OrgsRepository, 'lockById'>,
    managementAudiences: string[],
  ) {
    this.#ds = dataSource;
    this.#repo = repo;
    this.#credentials = credentials;
    this.#orgs = orgs;
    this.#managementAudiences = managementAudiences;
  }

  /** A new agent row (not stored). */
  static build(orgId: string, input: AgentInput, id: string = randomUUID()): Agent {
    const now = new Date();
    return {
      id,
      orgId,
      name: input.name,
      description: input.description ?? null,
      owner: input.owner ?? null,
      status: 'active',
      scopes: input.scopes ?? [],
      audiences: input.audiences ?? [],
      metadata: input.metadata ?? {},
      accessTokenTtlSeconds: input.accessTokenTtlSeconds ?? null,
      tokenQuota: input.tokenQuota ?? null,
      requireDpop: input.requireDpop ?? false,
      mayAct: input.mayAct ?? [],
      createdAt: now,
      updatedAt: now,
      decommissionedAt: null,
    };
  }

  async create(actor: Actor, input: AgentInput): Promise<Agent> {
    assertGrantableScopes(input.scopes, actor);
    assertRegistrableAudiences(input.audiences, this.#managementAudiences);
    assertConsistentQuota(input.tokenQuota);
    const agent = AgentsService.build(actor.orgId, input);
    await this.#assertActors(actor.orgId, agent.id, input.mayAct);
    // Count and insert under the org's row lock: concurrent creates cannot both take the last place.
    await this.#ds.transaction(async (manager) => {
      const org = await this.#orgs.lockById(actor.orgId, manager);
      assertBelowLimit(org?.limits ?? {}, 'maxAgents', await this.#repo.countLive(actor.orgId, manager));
      await this.#repo.insert(agent, manager);
    });
    return agent;
  }

  async get(orgId: string, agentId: string): Promise<Agent> {
    const agent = await this.#repo.findInOrg(orgId, agentId);
    if (!agent) throw new NotFound(`agent ${agentId} not found`);
    return agent;
  }

  list(orgId: string, filter: { status?: AgentStatus }, page: PageRequest) {
    return this.#repo.list(orgId, filter, page);
  }

  /** Returns the agent as changed, and what changed: the fields, and whether it was suspended or reactivated. */
  async update(actor: Actor, agentId: string, changes: AgentChanges): Promise<{ agent: Agent; fields: string[]; statusChange?: 'suspended' | 'reactivated' }> {
    const agent = await this.get(actor.orgId, agentId);
    if (agent.status === 'decommissioned') {
      throw new Conflict('agent_decommissioned', `agent ${agentId} is decommissioned and cannot change`);
    }
    assertGrantableScopes(changes.scopes, actor);
    assertRegistrableAudiences(changes.audiences, this.#managementAudiences);
    assertConsistentQuota(changes.tokenQuota);
    await this.#assertActors(actor.orgId, agentId, changes.mayAct);
    const updated: Agent = { ...agent, ...changes, updatedAt: new Date() } as Agent;
    await this.#repo.update(actor.orgId, agentId, {
      name: updated.name,
      description: updated.description,
      owner: updated.owner,
      status: updated.status,
      scopes: updated.scopes,
      audiences: updated.audiences,
      metadata: updated.metadata,
      accessTokenTtlSeconds: updated.accessTokenTtlSeconds,
      tokenQuota: updated.tokenQuota,
      requireDpop: updated.requireDpop,
      mayAct: updated.mayAct,
      updatedAt: updated.updatedAt,
    });
    const fields = Object.keys(changes).filter((f) => f !== 'status');
    const statusChange =
      changes.status && changes.status !== agent.status ? (changes.status === 'suspended' ? ('suspended' as const) : ('reactivated' as const)) : undefined;
    return { agent: updated, fields, statusChange };
  }

  /**
   * mayAct names agents of the same org only (design/delegation-and-federation.md): an agent of
   * another org, or none at all, is refused with the one answer (no probing of other orgs' ids).
   * The agent itself is refused too: acting for oneself is not delegation.
   */
  async #assertActors(orgId: string, agentId: string, mayAct: string[] | undefined): Promise<void> {
    if (!mayAct) return;
    const live = await this.#repo.liveIdsInOrg(orgId, mayAct);
    const errors = mayAct.flatMap((id, i) =>
      id === agentId
        ? [{ field: `/mayAct/${i}`, message: 'an agent does not act for itself' }]
        : live.has(id)
          ? []
          : [{ field: `/mayAct/${i}`, message: `${id} is not an agent of this org` }],
    );
    if (errors.length) throw new ValidationFailed('mayAct names agents that cannot act for this one', errors);
  }

  /** For good: the agent stops loading as a client and every credential is revoked. */
  /** Returns the ids of the credentials it revoked. */
  async decommission(actor: Actor, agentId: string): Promise<string[]> {
    const agent = await this.get(actor.orgId, agentId);
    if (agent.status === 'decommissioned') {
      throw new Conflict('agent_decommissioned', `agent ${agentId} is already decommissioned`);
    }
    const now = new Date();
    return this.#ds.transaction(async (manager) => {
      await this.#repo.update(actor.orgId, agentId, { status: 'decommissioned', decommissionedAt: now, updatedAt: now }, manager);
      return this.#credentials.revokeAllOfAgent(actor.orgId, agentId, manager);
    });
  }
}

/**
 * An hourly bound below the per-minute one makes the per-minute bound meaningless: almost surely
 * a mistake (the two swapped, or a unit confused), so it is refused rather than stored.
 */
function assertConsistentQuota(quota: TokenQuota | null | undefined): void {
  if (quota?.perMinute !== undefined && quota.perHour !== undefined && quota.perHour < quota.perMinute) {
    throw new ValidationFailed('tokenQuota.perHour is below tokenQuota.perMinute', [
      { field: '/tokenQuota/perHour', message: `must be at least perMinute (${quota.perMinute})` },
    ]);
  }
}
