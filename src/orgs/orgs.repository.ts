import type { DataSource, EntityManager } from 'typeorm';
import { OrgEntity, type Org, type OrgLimits } from './org.entity.ts';
import { offsetOf, type PageRequest } from '../db/pagination.ts';

export class OrgsRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  #repo(manager?: EntityManager) {
    return (manager ?? this.#ds.manager).getRepository(OrgEntity);
  }

  async insert(org: Org, manager?: EntityManager): Promise<void> {
    await this.#repo(manager).insert(org);
  }

  async findRoot(manager?: EntityManager): Promise<Org | null> {
    return this.#repo(manager).findOneBy({ isRoot: true });
  }

  async findById(id: string, manager?: EntityManager): Promise<Org | null> {
    return this.#repo(manager).findOneBy({ id });
  }

  /**
   * The org, its row locked until the transaction of `manager` ends: whoever counts the org's
   * objects against its limits, or changes the limits, waits for the others. NO KEY UPDATE, not
   * UPDATE: the foreign-key checks of inserts that name the org (KEY SHARE) do not wait.
   */
  async lockById(id: string, manager: EntityManager): Promise<Org | null> {
    return this.#repo(manager).createQueryBuilder('org').where('org.id = :id', { id }).setLock('for_no_key_update').getOne();
  }

  /** The org's limits (an unknown org has none). */
  async limitsOf(id: string, manager?: EntityManager): Promise<OrgLimits> {
    return (await this.findById(id, manager))?.limits ?? {};
  }

  /** Announced to the other instances by the trigger orgs_notify_state (`org:<id>`, migrations/1763769600900-AddLimitsAndQuotas.ts). */
  async update(id: string, changes: Pick<Partial<Org>, 'name' | 'limits'>, manager?: EntityManager): Promise<void> {
    await this.#repo(manager).update({ id }, changes);
  }

  async list(page: PageRequest): Promise<{ rows: Org[]; total: number }> {
    const [rows, total] = await this.#repo().findAndCount({
      order: { createdAt: 'ASC', id: 'ASC' },
      skip: offsetOf(page),
      take: page.limit,
    });
    return { rows, total };
  }
}
