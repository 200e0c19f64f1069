import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Org } from './org.entity.ts';
import type { OrgsRepository } from './orgs.repository.ts';
import { AgentsService } from '../agents/agents.service.ts';
import type { AgentsRepository } from '../agents/agents.repository.ts';
import type { CredentialsRepository } from '../credentials/credentials.repository.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import type { Agent } from '../agents/agent.entity.ts';
import { ORG_ADMIN_SCOPES } from '../policies/scopes.ts';
import { Conflict } from '../http/errors.ts';
import type { PageRequest } from '../db/pagination.ts';

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
      if ((err as { driverError?: { code?: string } }).driverError?.code === '23505') {
        throw new Conflict('org_name_taken', `an org named "${name}" already exists`);
      }
      throw err;
    }
    return { org, admin, adminSecret: secret };
  }

  list(page: PageRequest) {
    return this.#repo.list(page);
  }
}
