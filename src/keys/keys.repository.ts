import type { DataSource, EntityManager } from 'typeorm';
import { SigningKeyEntity, type SigningKey } from './signing-key.entity.ts';
import { KEYS_CHANNEL } from './key-ring.ts';

// Signing keys are the service's, not a tenant's: no org scoping here. Every change is announced
// twice: by notifyChanged on agent_idp_keys (the key rings reload), and row by row by the trigger
// signing_keys_notify_state on agent_idp_state (coherence forgets the kid).
export class KeysRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  #repo(manager?: EntityManager) {
    return (manager ?? this.#ds.manager).getRepository(SigningKeyEntity);
  }

  /** Every key, oldest first. */
  async all(manager?: EntityManager): Promise<SigningKey[]> {
    return this.#repo(manager).find({ order: { createdAt: 'ASC', kid: 'ASC' } });
  }

  /** Keys in the JWKS: next, active and retired; oldest first. */
  async published(): Promise<SigningKey[]> {
    return this.#repo()
      .createQueryBuilder('k')
      .where(`k.status IN ('next', 'active', 'retired')`)
      .orderBy('k.created_at', 'ASC')
      .addOrderBy('k.kid', 'ASC')
      .getMany();
  }

  /** What the key set is now, cheaply: to tell whether another instance changed it. */
  async fingerprint(): Promise<string> {
    const rows: { kid: string; status: string }[] = await this.#ds.query(
      `SELECT kid, status FROM signing_keys WHERE status IN ('next', 'active', 'retired') ORDER BY created_at, kid`,
    );
    return rows.map((r) => `${r.kid}:${r.status}`).join(',');
  }

  async find(kid: string, manager?: EntityManager): Promise<SigningKey | null> {
    return this.#repo(manager).findOneBy({ kid });
  }

  async active(manager?: EntityManager): Promise<SigningKey | null> {
    return this.#repo(manager).findOneBy({ status: 'active' });
  }

  async insert(key: SigningKey, manager?: EntityManager): Promise<void> {
    await this.#repo(manager).insert(key);
  }

  async update(kid: string, changes: Partial<SigningKey>, manager: EntityManager): Promise<void> {
    await this.#repo(manager).update({ kid }, changes);
  }

  async remove(kid: string, manager?: EntityManager): Promise<void> {
    await this.#repo(manager).delete({ kid });
  }

  /** Serialises every change of the key set across instances, until the transaction ends. */
  async lock(manager: EntityManager): Promise<void> {
    await manager.query(`SELECT pg_advisory_xact_lock(hashtext('agent-idp:signing-keys'))`);
  }

  /** The same lock, only if free now (for the scheduler). */
  async tryLock(manager: EntityManager): Promise<boolean> {
    const [row]: { locked: boolean }[] = await manager.query(`SELECT pg_try_advisory_xact_lock(hashtext('agent-idp:signing-keys')) AS locked`);
    return row.locked;
  }

  /** The longest lifetime a token can have had: bounds how long a retired key stays published. */
  async longestTokenTtl(defaultTtl: number, manager?: EntityManager): Promise<number> {
    const [row]: { ttl: number | null }[] = await (manager ?? this.#ds.manager).query(`SELECT max(access_token_ttl_seconds) AS ttl FROM agents`);
    return Math.max(defaultTtl, row.ttl ?? 0);
  }

  async notifyChanged(manager: EntityManager): Promise<void> {
    // Delivered to the other instances' LISTEN when the transaction commits.
    await manager.query(`SELECT pg_notify($1, 'changed')`, [KEYS_CHANNEL]);
  }
}
