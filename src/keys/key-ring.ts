import type { JWK } from 'jose';
import type { SigningAlg } from '../../config/index.ts';
import type { Logger } from '../lib/logger.ts';
import type { KeysRepository } from './keys.repository.ts';
import type { NotifyConnection } from '../db/notify.ts';
import { decryptPrivateKey, encryptionKeyId, KeyEncryptionError } from './key-encryption.ts';

/** What the OAuth engine needs: the private JWKs it may sign with and publish, and who signs now. */
export interface Keyset {
  /** Private JWKs (with kid, alg, use) of every published key; oidc-provider publishes their public halves. */
  privateJwks: JWK[];
  activeKid: string;
  activeAlg: SigningAlg;
  /** When the active key started signing (its age is a metric: a stalled rotation shows). */
  activeSince: Date;
  /** `kid:status,…` of the published keys: equal versions, equal sets. */
  version: string;
}

export type KeysetListener = (keyset: Keyset) => void;

export const KEYS_CHANNEL = 'agent_idp_keys';

// The published key set of this instance, kept in step with the database: reloaded at once
// after a change made here, on a NOTIFY from another instance (heard on the instance's one
// LISTEN connection, db/notify.ts), and by polling: every second while that connection is down
// or absent (the embedded database), every 30 s as a safety net otherwise.
export class KeyRing {
  readonly #repo: KeysRepository;
  readonly #masterKey: Buffer;
  readonly #logger: Logger;
  readonly #notify: NotifyConnection;
  readonly #listeners: KeysetListener[] = [];
  #current: Keyset | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #stopped = true;
  #reloading: Promise<boolean> | undefined;

  constructor(repo: KeysRepository, masterKey: Buffer, notify: NotifyConnection, logger: Logger) {
    this.#repo = repo;
    this.#masterKey = masterKey;
    this.#notify = notify;
    this.#logger = logger;
    notify.listen(KEYS_CHANNEL, () => void this.reload().catch((err) => this.#logger.error('could not reload the signing keys', { err })));
    // A change may have landed while nobody listened.
    notify.onConnect(() => (this.#current ? this.#reloadIfChanged() : undefined));
  }

  get current(): Keyset {
    if (!this.#current) throw new Error('the key ring has not been loaded');
    return this.#current;
  }

  onChange(listener: KeysetListener): void {
    this.#listeners.push(listener);
  }

  /** Decrypts every published key. A wrong master key stops here with a clear message. */
  async load(): Promise<Keyset> {
    const keys = await this.#repo.published();
    const active = keys.find((k) => k.status === 'active');
    if (!active) throw new Error('no active signing key');
    const expectedId = encryptionKeyId(this.#masterKey);
    const privateJwks = keys.map((key) => {
      if (key.encryptionKeyId !== expectedId) {
        throw new KeyEncryptionError(
          `KEY_ENCRYPTION_KEY does not match the key that encrypted signing key ${key.kid} (encryption key id ${key.encryptionKeyId}, configured ${expectedId})`,
        );
      }
      let jwk: JWK;
      try {
        jwk = JSON.parse(decryptPrivateKey(this.#masterKey, key.privateKeyEnc, key.kid)) as JWK;
      } catch (err) {
        throw new KeyEncryptionError(`signing key ${key.kid} could not be decrypted with KEY_ENCRYPTION_KEY: ${(err as Error).message}`);
      }
      return { ...jwk, kid: key.kid, alg: key.alg, use: 'sig' };
    });
    return {
      privateJwks,
      activeKid: active.kid,
      activeAlg: active.alg,
      activeSince: active.activatedAt ?? active.createdAt,
      version: keys.map((k) => `${k.kid}:${k.status}`).join(','),
    };
  }

  /** Loads the set and tells the listeners when it changed. Concurrent calls share one load. */
  reload(): Promise<boolean> {
    this.#reloading ??= (async () => {
      try {
        const next = await this.load();
        if (next.version === this.#current?.version) return false;
        this.#current = next;
        for (const listener of this.#listeners) listener(next);
        return true;
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  async #reloadIfChanged(): Promise<void> {
    try {
      if ((await this.#repo.fingerprint()) !== this.#current?.version) await this.reload();
    } catch (err) {
      this.#logger.warn('could not check the signing keys for changes; will try again', { err });
    }
  }

  /** Starts polling (the NOTIFY subscription needs no start). */
  start(): void {
    this.#stopped = false;
    this.#schedulePoll();
  }

  #schedulePoll(): void {
    if (this.#stopped) return;
    const every = this.#notify.connected ? 30_000 : 1_000;
    this.#pollTimer = setTimeout(async () => {
      await this.#reloadIfChanged();
      this.#schedulePoll();
    }, every);
    this.#pollTimer.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#pollTimer);
  }
}
