import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { Agent, AgentStatus, AgentView, FederatedIdentity, TokenQuota } from './agent.entity.ts';
import type { AgentsRepository } from './agents.repository.ts';
import { ISSUER_SUBJECT_CONSTRAINT, type FederatedIdentitiesRepository } from './federated-identities.repository.ts';
import { outboundUrlProblem, type OutboundPolicy } from '../http/outbound.ts';
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
  federatedIdentities?: { issuer: string; subject: string; audience?: string | null }[];
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
  readonly #identities: FederatedIdentitiesRepository;
  /** Which issuers an identity may name (FEDERATION_ALLOW_INSECURE_ISSUERS). */
  readonly #issuers: OutboundPolicy;

  constructor(
    dataSource: DataSource,
    repo: AgentsRepository,
    credentials: Pick<CredentialsService, 'revokeAllOfAgent'>,
    orgs: Pick<OrgsRepository, 'lockById'>,
    managementAudiences: string[],
    identities: FederatedIdentitiesRepository,
    issuers: OutboundPolicy,
  ) {
    this.#ds = dataSource;
    this.#repo = repo;
    this.#credentials = credentials;
    this.#orgs = orgs;
    this.#managementAudiences = managementAudiences;
    this.#identities = identities;
    this.#issuers = issuers;
  }

  /** The identities as stored: each issuer checked, no pair twice (a pair held by another agent is refused by the database). */
  #federatedIdentities(input: AgentInput['federatedIdentities']): FederatedIdentity[] | undefined {
    if (input === undefined) return undefined;
    const seen = new Set<string>();
    return input.map((identity, i) => {
      const problem = outboundUrlProblem(identity.issuer, this.#issuers);
      if (problem)
        throw new ValidationFailed('a federated identity names an issuer that cannot be used', [
          { field: `/federatedIdentities/${i}/issuer`, message: problem },
        ]);
      const pair = JSON.stringify([identity.issuer, identity.subject]);
      if (seen.has(pair)) {
        throw new ValidationFailed('the same issuer and subject are listed twice', [
          { field: `/federatedIdentities/${i}`, message: 'duplicates an earlier entry' },
        ]);
      }
      seen.add(pair);
      return { issuer: identity.issuer, subject: identity.subject, audience: identity.audience ?? null };
    });
  }

  /** Stores the agent's identities; a pair another agent (of any org) holds is 409. */
  async #replaceIdentities(orgId: string, agentId: string, identities: FederatedIdentity[], manager: EntityManager): Promise<void> {
    try {
      await this.#identities.replace(orgId, agentId, identities, manager);
    } catch (err) {
      const failed = err as { constraint?: string; driverError?: { constraint?: string } };
      if ((failed.constraint ?? failed.driverError?.constraint) === ISSUER_SUBJECT_CONSTRAINT) {
        throw new Conflict('federated_identity_taken', 'one of these issuer and subject pairs is already mapped to another agent');
      }
      throw err;
    }
  }

  async #withIdentities(orgId: string, agents: Agent[]): Promise<AgentView[]> {
    const identities = await this.#identities.listOf(
      orgId,
      agents.map((a) => a.id),
    );
    return agents.map((agent) => ({ ...agent, federatedIdentities: identities.get(agent.id) ?? [] }));
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

  async create(actor: Actor, input: AgentInput): Promise<AgentView> {
    assertGrantableScopes(input.scopes, actor);
    assertRegistrableAudiences(input.audiences, this.#managementAudiences);
    assertConsistentQuota(input.tokenQuota);
    const federatedIdentities = this.#federatedIdentities(input.federatedIdentities) ?? [];
    const { federatedIdentities: _, ...fields } = input;
    const agent = AgentsService.build(actor.orgId, fields);
    await this.#assertActors(actor.orgId, agent.id, input.mayAct);
    // Count and insert under the org's row lock: concurrent creates cannot both take the last place.
    await this.#ds.transaction(async (manager) => {
      const org = await this.#orgs.lockById(actor.orgId, manager);
      assertBelowLimit(org?.limits ?? {}, 'maxAgents', await this.#repo.countLive(actor.orgId, manager));
      await this.#repo.insert(agent, manager);
      if (federatedIdentities.length) await this.#replaceIdentities(actor.orgId, agent.id, federatedIdentities, manager);
    });
    return { ...agent, federatedIdentities };
  }

  async #find(orgId: string, agentId: string): Promise<Agent> {
    const agent = await this.#repo.findInOrg(orgId, agentId);
    if (!agent) throw new NotFound(`agent ${agentId} not found`);
    return agent;
  }

  async get(orgId: string, agentId: string): Promise<AgentView> {
    return (await this.#withIdentities(orgId, [await this.#find(orgId, agentId)]))[0];
  }

  async list(orgId: string, filter: { status?: AgentStatus }, page: PageRequest): Promise<{ rows: AgentView[]; total: number }> {
    const { rows, total } = await this.#repo.list(orgId, filter, page);
    return { rows: await this.#withIdentities(orgId, rows), total };
  }

  /** Returns the agent as changed, and what changed: the fields, and whether it was suspended or reactivated. */
  async update(
    actor: Actor,
    agentId: string,
    changes: AgentChanges,
  ): Promise<{ agent: AgentView; fields: string[]; statusChange?: 'suspended' | 'reactivated' }> {
    const agent = await this.#find(actor.orgId, agentId);
    if (agent.status === 'decommissioned') {
      throw new Conflict('agent_decommissioned', `agent ${agentId} is decommissioned and cannot change`);
    }
    assertGrantableScopes(changes.scopes, actor);
    assertRegistrableAudiences(changes.audiences, this.#managementAudiences);
    assertConsistentQuota(changes.tokenQuota);
    await this.#assertActors(actor.orgId, agentId, changes.mayAct);
    const federatedIdentities = this.#federatedIdentities(changes.federatedIdentities);
    const { federatedIdentities: _, ...fieldChanges } = changes;
    const updated: Agent = { ...agent, ...fieldChanges, updatedAt: new Date() } as Agent;
    await this.#ds.transaction(async (manager) => {
      await this.#repo.update(
        actor.orgId,
        agentId,
        {
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
        },
        manager,
      );
      if (federatedIdentities) await this.#replaceIdentities(actor.orgId, agentId, federatedIdentities, manager);
    });
    const [view] = await this.#withIdentities(actor.orgId, [updated]);
    const fields = Object.keys(changes).filter((f) => f !== 'status');
    const statusChange =
      changes.status && changes.status !== agent.status ? (changes.status === 'suspended' ? ('suspended' as const) : ('reactivated' as const)) : undefined;
    return { agent: view, fields, statusChange };
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
    const agent = await this.#find(actor.orgId, agentId);
    if (agent.status === 'decommissioned') {
      throw new Conflict('agent_decommissioned', `agent ${agentId} is already decommissioned`);
    }
    const now = new Date();
    return this.#ds.transaction(async (manager) => {
      await this.#repo.update(actor.orgId, agentId, { status: 'decommissioned', decommissionedAt: now, updatedAt: now }, manager);
      // For good: its external identities may be mapped to another agent.
      await this.#identities.removeAll(actor.orgId, agentId, manager);
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
