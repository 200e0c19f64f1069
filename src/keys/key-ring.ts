import pg from 'pg';
import type { JWK } from 'jose';
import type { SigningAlg } from '../../config/index.ts';
import type { Logger } from '../lib/logger.ts';
import type { KeysRepository } from './keys.repository.ts';
import { decryptPrivateKey, encryptionKeyId, KeyEncryptionError } from './key-encryption.ts';

/** What the OAuth engine needs: the private JWKs it may sign with and publish, and who signs now. */
export interface Keyset {
  /** Private JWKs (with kid, alg, use) of every published key; oidc-provider publishes their public halves. */
  privateJwks: JWK[];
  activeKid: string;
  activeAlg: SigningAlg;
  /** `kid:status,…` of the published keys: equal versions, equal sets. */
  version: string;
}

export type KeysetListener = (keyset: Keyset) => void;

const LISTEN_CHANNEL = 'agent_idp_keys';

// The published key set of this instance, kept in step with the database: reloaded at once
// after a change made here, on a NOTIFY from another instance, and by polling (every second
// while the LISTEN connection is down or absent, as on the embedded database; every 30 s as a
// safety net otherwise).
export class KeyRing {
  readonly #repo: KeysRepository;
  readonly #masterKey: Buffer;
  readonly #logger: Logger;
  readonly #listenUrl: string | undefined;
  readonly #listeners: KeysetListener[] = [];
  #current: Keyset | undefined;
  #listener: pg.Client | undefined;
  #listening = false;
  #pollTimer: NodeJS.Timeout | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #reloading: Promise<boolean> | undefined;

  constructor(repo: KeysRepository, masterKey: Buffer, logger: Logger, options: { listenUrl?: string } = {}) {
    this.#repo = repo;
    this.#masterKey = masterKey;
    this.#logger = logger;
    this.#listenUrl = options.listenUrl;
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

  start(): void {
    this.#stopped = false;
    if (this.#listenUrl) void this.#listen();
    this.#schedulePoll();
  }

  #schedulePoll(): void {
    if (this.#stopped) return;
    const every = this.#listening ? 30_000 : 1_000;
    this.#pollTimer = setTimeout(async () => {
      await this.#reloadIfChanged();
      this.#schedulePoll();
    }, every);
    this.#pollTimer.unref();
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#listenUrl, application_name: 'agent-idp-keys-listener' });
    const lost = (err?: Error) => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      this.#listening = false;
      client.removeAllListeners();
      client.end().catch(() => {});
      if (this.#stopped) return;
      this.#logger.warn('lost the LISTEN connection for key changes; polling every second until it is back', { err });
      this.#reconnectTimer = setTimeout(() => void this.#listen(), 1_000);
      this.#reconnectTimer.unref();
    };
    this.#listener = client;
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', () => void this.reload().catch((err) => this.#logger.error('could not reload the signing keys', { err })));
    try {
      await client.connect();
      await client.query(`LISTEN ${LISTEN_CHANNEL}`);
      this.#listening = true;
      // A change may have landed while we were not listening.
      await this.#reloadIfChanged();
    } catch (err) {
      lost(err as Error);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#reconnectTimer);
    const client = this.#listener;
    this.#listener = undefined;
    this.#listening = false;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => {});
      await client.end().catch(() => {});
    }
  }
}
