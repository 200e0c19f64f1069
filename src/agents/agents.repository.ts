import { type DataSource, type EntityManager, Not } from 'typeorm';
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

  /**
   * The state of an agent known only by its id, in no org: for what the agent publishes to
   * anyone (its public keys, GET /agents/{id}/jwks). Never an agent's other fields.
   */
  async statusById(id: string): Promise<Pick<Agent, 'id' | 'status'> | null> {
    const rows: { id: string; status: Agent['status'] }[] = await this.#ds.query('SELECT id, status FROM agents WHERE id = $1', [id]);
    return rows[0] ?? null;
  }

  /** The agent, its row locked until the transaction of `manager` ends (see OrgsRepository.lockById). */
  async lockInOrg(orgId: string, id: string, manager: EntityManager): Promise<Agent | null> {
    return this.#repo(manager)
      .createQueryBuilder('agent')
      .where('agent.org_id = :orgId AND agent.id = :id', { orgId, id })
      .setLock('for_no_key_update')
      .getOne();
  }

  /** What the org's maxAgents counts: its agents that are not decommissioned (suspended ones count). */
  async countLive(orgId: string, manager?: EntityManager): Promise<number> {
    return this.#repo(manager).count({ where: { orgId, status: Not('decommissioned') } });
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

  /**
   * Adds `added` to the scopes of every agent of the org that holds all of `holding` (the
   * operators, when a release brings new management scopes). Returns the agents changed.
   */
  async addScopesWhereHeld(orgId: string, holding: string[], added: string[], agentId?: string): Promise<string[]> {
    const [rows]: [{ id: string }[], number] = await this.#ds.query(
      `UPDATE agents SET scopes = scopes || ARRAY(SELECT unnest($3::text[]) EXCEPT SELECT unnest(scopes)), updated_at = now()
        WHERE org_id = $1 AND scopes @> $2::text[] AND NOT scopes @> $3::text[] AND ($4::uuid IS NULL OR id = $4::uuid) RETURNING id`,
      [orgId, holding, added, agentId ?? null],
    );
    return rows.map((r) => r.id);
  }

  async update(orgId: string, id: string, changes: Partial<Agent>, manager?: EntityManager): Promise<void> {
    await this.#repo(manager).update({ orgId, id }, changes as QueryDeepPartialEntity<Agent>);
  }
}
