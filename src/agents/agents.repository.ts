import type { DataSource, EntityManager } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { AgentEntity, type Agent, type AgentStatus } from './agent.entity.ts';
import { offsetOf, type PageRequest } from '../db/pagination.ts';

// Every query on tenant data takes the org id and puts it in the WHERE. (Client authentication,
// which knows a client only by its globally unique id, reads agents in oauth/client-store.ts.)
// Every change is announced to the other instances by the trigger agents_notify_state
// (`agent:<id>` on agent_idp_state, migrations/1763769600600-CreateStateNotifications.ts).
export class AgentsRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
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
