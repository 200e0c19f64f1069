import type { DataSource, EntityManager } from 'typeorm';
import { SigningKeyEntity, type SigningKey } from './signing-key.entity.ts';

// Signing keys are the service's, not a tenant's: no org scoping here.
export class KeysRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  #repo(manager?: EntityManager) {
    return (manager ?? this.#ds.manager).getRepository(SigningKeyEntity);
  }

  /** Keys in the JWKS: next, active and retired; oldest first. */
  async published(): Promise<SigningKey[]> {
    return this.#repo()
      .createQueryBuilder('k')
      .where(`k.status IN ('next', 'active', 'retired')`)
      .orderBy('k.created_at', 'ASC')
      .getMany();
  }

  async active(manager?: EntityManager): Promise<SigningKey | null> {
    return this.#repo(manager).findOneBy({ status: 'active' });
  }

  async insert(key: SigningKey, manager?: EntityManager): Promise<void> {
    await this.#repo(manager).insert(key);
  }
}
