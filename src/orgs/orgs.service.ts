import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Org, OrgLimits } from './org.entity.ts';
import type { OrgsRepository } from './orgs.repository.ts';
import { AgentsService } from '../agents/agents.service.ts';
import type { AgentsRepository } from '../agents/agents.repository.ts';
import type { CredentialsRepository } from '../credentials/credentials.repository.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import type { Agent } from '../agents/agent.entity.ts';
import { ORG_ADMIN_SCOPES } from '../policies/scopes.ts';
import { Conflict, NotFound } from '../http/errors.ts';
import type { PageRequest } from '../db/pagination.ts';

/** A change of an org's limits: each limit given is set, `null` removes it, one not named stays. */
export type OrgLimitsChange = { [K in keyof OrgLimits]?: OrgLimits[K] | null };

export interface OrgChanges {
  name?: string;
  limits?: OrgLimitsChange;
}

export interface CreatedOrg {
  org: Org;
  admin: Agent;
  adminSecret: string;
}

export class OrgsService {
  readonly #ds: DataSource;
  readonly #repo: OrgsRepository;
  readonly #agents: Pick<AgentsRepository, 'insert'>;
  readonly #credentialRows: Pick<CredentialsRepository, 'insert'>;
  readonly #credentials: Pick<CredentialsService, 'mint'>;

  constructor(
    dataSource: DataSource,
    repos: { orgs: OrgsRepository; agents: Pick<AgentsRepository, 'insert'>; credentials: Pick<CredentialsRepository, 'insert'> },
    credentials: Pick<CredentialsService, 'mint'>,
  ) {
    this.#ds = dataSource;
    this.#repo = repos.orgs;
    this.#agents = repos.agents;
    this.#credentialRows = repos.credentials;
    this.#credentials = credentials;
  }

  /**
   * A tenant and its first admin agent, who may manage the org's agents and read its audit log.
   * The admin registers no audience: its scopes imply the management API's, under whatever
   * issuer the service runs as.
   */
  async create(name: string): Promise<CreatedOrg> {
    const org: Org = { id: randomUUID(), name, isRoot: false, limits: {}, createdAt: new Date() };
    const admin = AgentsService.build(org.id, {
      name: `${name} admin`,
      description: 'First administrator of the org, created with it',
      scopes: ORG_ADMIN_SCOPES,
    });
    // bcrypt before the transaction: no connection is held while hashing.
    const { credential, secret } = await this.#credentials.mint(admin, null);
    try {
      await this.#ds.transaction(async (manager) => {
        await this.#repo.insert(org, manager);
        await this.#agents.insert(admin, manager);
        await this.#credentialRows.insert(credential, manager);
      });
    } catch (err) {
      throw nameTakenOr(err, name);
    }
    return { org, admin, adminSecret: secret };
  }

  async get(orgId: string): Promise<Org> {
    const org = await this.#repo.findById(orgId);
    if (!org) throw new NotFound(`org ${orgId} not found`);
    return org;
  }

  /**
   * Returns the org before and after the change. The root org's limits may be set too: they are
   * the operators' own to choose, and bind the operators' agents like any org's.
   */
  async update(orgId: string, changes: OrgChanges): Promise<{ before: Org; after: Org }> {
    try {
      // Under the org's row lock: a create that counts against the limits sees either the old
      // limits or the new ones, and two changes of different limits do not undo each other.
      return await this.#ds.transaction(async (manager) => {
        const before = await this.#repo.lockById(orgId, manager);
        if (!before) throw new NotFound(`org ${orgId} not found`);
        const after: Org = { ...before, name: changes.name ?? before.name, limits: applyLimits(before.limits, changes.limits ?? {}) };
        await this.#repo.update(orgId, { name: after.name, limits: after.limits }, manager);
        return { before, after };
      });
    } catch (err) {
      throw nameTakenOr(err, changes.name ?? '');
    }
  }

  list(page: PageRequest) {
    return this.#repo.list(page);
  }
}

function applyLimits(limits: OrgLimits, change: OrgLimitsChange): OrgLimits {
  const next: Record<string, number> = { ...limits };
  for (const [key, value] of Object.entries(change)) {
    if (value === null) delete next[key];
    else if (value !== undefined) next[key] = value;
  }
  return next;
}

function nameTakenOr(err: unknown, name: string): unknown {
  if ((err as { driverError?: { code?: string } }).driverError?.code === '23505') {
    return new Conflict('org_name_taken', `an org named "${name}" already exists`);
  }
  return err;
}
