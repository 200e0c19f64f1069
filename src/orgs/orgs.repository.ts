import type { DataSource, EntityManager } from 'typeorm';
import { OrgEntity, type Org } from './org.entity.ts';
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

  async list(page: PageRequest): Promise<{ rows: Org[]; total: number }> {
    const [rows, total] = await this.#repo().findAndCount({
      order: { createdAt: 'ASC', id: 'ASC' },
      skip: offsetOf(page),
      take: page.limit,
    });
    return { rows, total };
  }
}
