import type { DataSource, EntityManager } from 'typeorm';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { SigningAlg } from '../../config/index.ts';
import type { Logger } from '../lib/logger.ts';
import { JWK_PRIVATE_MEMBERS } from '../lib/redaction.ts';
import { DAY_MS } from '../lib/time.ts';
import type { KeysRepository } from './keys.repository.ts';
import type { KeyStatus, SigningKey } from './signing-key.entity.ts';
import { encryptPrivateKey, encryptionKeyId } from './key-encryption.ts';
import type { KeyRing } from './key-ring.ts';
import { BadRequest, Conflict, NotFound } from '../http/errors.ts';

// The lifecycle of signing keys: next (published, not signing) → active (signs) → retired
// (published until every token it signed has expired) → removed; or revoked at any moment.
// Every change runs in one transaction under an advisory lock shared by all instances, sends
// a NOTIFY, and reloads this instance's key ring before it returns.

/** How long resource servers may cache the JWKS; a next key is published at least this long before it signs. */
export const JWKS_MAX_AGE_SECONDS = 600;
/** Extra time a retired key stays published, for resource servers whose clocks run late. */
const CLOCK_TOLERANCE_SECONDS = 60;

export function publicJwkOf(jwk: JWK): JWK {
  return Object.fromEntries(Object.entries(jwk).filter(([name]) => !JWK_PRIVATE_MEMBERS.includes(name))) as JWK;
}

export interface KeysConfig {
  keyAlg: SigningAlg;
  keyRotationDays: number;
  accessTokenTtlSeconds: number;
}

export interface MaintenanceResult {
  /** False when another instance holds the lock: it does the work. */
  ran: boolean;
  rotated?: { retired: string | null; active: string; next: string };
  createdNext?: string;
  removed: string[];
}

export class KeysService {
  readonly #ds: DataSource;
  readonly #repo: KeysRepository;
  readonly #masterKey: Buffer;
  readonly #config: KeysConfig;
  readonly #logger: Logger;
  readonly #ring: KeyRing;

  constructor(dataSource: DataSource, repo: KeysRepository, masterKey: Buffer, config: KeysConfig, logger: Logger, ring: KeyRing) {
    this.#ds = dataSource;
    this.#repo = repo;
    this.#masterKey = masterKey;
    this.#config = config;
    this.#logger = logger;
    this.#ring = ring;
  }

  /** A new key pair, its private half encrypted, not yet stored. */
  async generate(alg: SigningAlg, status: KeyStatus, now = new Date()): Promise<SigningKey> {
    const { privateKey } = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
    const jwk = await exportJWK(privateKey);
    const publicJwk = publicJwkOf(jwk);
    const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
    return {
      kid,
      alg,
      status,
      publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
      privateKeyEnc: encryptPrivateKey(this.#masterKey, JSON.stringify(jwk), kid),
      encryptionKeyId: encryptionKeyId(this.#masterKey),
      createdAt: now,
      activatedAt: status === 'active' ? now : null,
      retiredAt: null,
      revokedAt: null,
    };
  }

  /** Runs a change of the key set: locked, notified, and reloaded here before returning. */
  async #change<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const result = await this.#ds.transaction(async (manager) => {
      await this.#repo.lock(manager);
      const value = await work(manager);
      await this.#repo.notifyChanged(manager);
      return value;
    });
    await this.#ring.reload();
    return result;
  }

  /** At start: one active key and one next key, generated on a new database. Safe on several instances. */
  async ensureKeys(): Promise<void> {
    const keys = await this.#repo.all();
    if (keys.some((k) => k.status === 'active') && keys.some((k) => k.status === 'next')) return;
    const [active, next] = await Promise.all([this.generate(this.#config.keyAlg, 'active'), this.generate(this.#config.keyAlg, 'next')]);
    await this.#ds.transaction(async (manager) => {
      await this.#repo.lock(manager);
      const current = await this.#repo.all(manager);
      if (!current.some((k) => k.status === 'active')) {
        await this.#repo.insert(active, manager);
        this.#logger.info('generated the first signing key', { kid: active.kid, alg: active.alg });
      }
      if (!current.some((k) => k.status === 'next')) {
        await this.#repo.insert({ ...next, createdAt: new Date() }, manager);
        this.#logger.info('generated the next signing key', { kid: next.kid, alg: next.alg });
      }
    });
  }

  list(): Promise<SigningKey[]> {
    return this.#repo.all();
  }

  async get(kid: string): Promise<SigningKey> {
    const key = await this.#repo.find(kid);
    if (!key) throw new NotFound(`key ${kid} not found`);
    return key;
  }

  async active(): Promise<SigningKey> {
    const key = await this.#repo.active();
    if (!key) throw new NotFound('no active key');
    return key;
  }

  /** A key in any state, or null once removed. */
  find(kid: string): Promise<SigningKey | null> {
    return this.#repo.find(kid);
  }

  /** A published key, for the public endpoint: revoked and removed keys are not found. */
  async published(kid: string): Promise<SigningKey> {
    const key = await this.#repo.find(kid);
    if (!key || key.status === 'revoked') throw new NotFound(`key ${kid} not found`);
    return key;
  }

  /** A new key in `next`: published now, signing from a later rotation. */
  async create(alg: SigningAlg = this.#config.keyAlg): Promise<SigningKey> {
    const key = await this.generate(alg, 'next');
    await this.#change((manager) => this.#repo.insert({ ...key, createdAt: new Date() }, manager));
    return key;
  }

  /** next → active, active → retired, and a new next. With no next key, a new one signs at once. */
  async rotate(): Promise<{ retired: SigningKey | null; active: SigningKey; next: SigningKey }> {
    const fresh = await this.generate(this.#config.keyAlg, 'next');
    return this.#change(async (manager) => this.#rotateIn(manager, fresh));
  }

  async #rotateIn(manager: EntityManager, fresh: SigningKey, now = new Date()) {
    const keys = await this.#repo.all(manager);
    const current = keys.find((k) => k.status === 'active') ?? null;
    let promoted = keys.find((k) => k.status === 'next');
    if (!promoted) {
      promoted = await this.generate(this.#config.keyAlg, 'next', now);
      await this.#repo.insert(promoted, manager);
    }
    if (current) await this.#repo.update(current.kid, { status: 'retired', retiredAt: now }, manager);
    await this.#repo.update(promoted.kid, { status: 'active', activatedAt: now }, manager);
    const next = { ...fresh, createdAt: now };
    await this.#repo.insert(next, manager);
    return {
      retired: current && { ...current, status: 'retired' as const, retiredAt: now },
      active: { ...promoted, status: 'active' as const, activatedAt: now },
      next,
    };
  }

  /** Unpublished at once; its tokens introspect inactive. Revoking the active key promotes the next. */
  async revoke(kid: string): Promise<SigningKey> {
    const replacement = await this.generate(this.#config.keyAlg, 'next');
    return this.#change(async (manager) => {
      const key = await this.#repo.find(kid, manager);
      if (!key) throw new NotFound(`key ${kid} not found`);
      if (key.status === 'revoked') throw new Conflict('key_revoked', `key ${kid} is already revoked`);
      const now = new Date();
      await this.#repo.update(kid, { status: 'revoked', revokedAt: now }, manager);
      const rest = (await this.#repo.all(manager)).filter((k) => k.kid !== kid);
      const nexts = rest.filter((k) => k.status === 'next');
      if (key.status === 'active') {
        // Signing never stops: the next key signs from now on (or a new key, if there is none).
        if (nexts.length > 0) {
          await this.#repo.update(nexts[0].kid, { status: 'active', activatedAt: now }, manager);
          nexts.shift();
        } else {
          await this.#repo.insert({ ...(await this.generate(this.#config.keyAlg, 'active', now)) }, manager);
        }
      }
      if (nexts.length === 0) await this.#repo.insert({ ...replacement, createdAt: now }, manager);
      this.#logger.warn('signing key revoked', { kid, was: key.status });
      return { ...key, status: 'revoked' as const, revokedAt: now };
    });
  }

  /** Only a revoked key can be deleted (the design's contract: otherwise 400). */
  async remove(kid: string): Promise<void> {
    await this.#change(async (manager) => {
      const key = await this.#repo.find(kid, manager);
      if (!key) throw new NotFound(`key ${kid} not found`);
      if (key.status !== 'revoked') throw new BadRequest('key_not_revoked', `key ${kid} is ${key.status}; only a revoked key can be deleted`);
      await this.#repo.remove(kid, manager);
    });
  }

  /**
   * The scheduled work, on one instance at a time: rotate when the active key is older than
   * KEY_ROTATION_DAYS and the next key has been published for a JWKS cache lifetime; remove
   * retired keys whose last token has expired; make sure a next key exists.
   */
  async maintain(now = new Date()): Promise<MaintenanceResult> {
    // A key pair is made only when one is needed (rarely): generating costs tens of milliseconds.
    const fresh = () => this.generate(this.#config.keyAlg, 'next', now);
    const result = await this.#ds.transaction(async (manager): Promise<MaintenanceResult> => {
      if (!(await this.#repo.tryLock(manager))) return { ran: false, removed: [] };
      const out: MaintenanceResult = { ran: true, removed: [] };
      let keys = await this.#repo.all(manager);
      if (!keys.some((k) => k.status === 'next')) {
        const next = await fresh();
        await this.#repo.insert(next, manager);
        out.createdNext = next.kid;
        keys = await this.#repo.all(manager);
      }
      const active = keys.find((k) => k.status === 'active');
      const next = keys.find((k) => k.status === 'next')!;
      const rotationDue = !active || active.activatedAt!.getTime() + this.#config.keyRotationDays * DAY_MS <= now.getTime();
      const nextPublishedLongEnough = next.createdAt.getTime() + JWKS_MAX_AGE_SECONDS * 1000 <= now.getTime();
      if (rotationDue && nextPublishedLongEnough && !out.createdNext) {
        const rotated = await this.#rotateIn(manager, await fresh(), now);
        out.rotated = { retired: rotated.retired?.kid ?? null, active: rotated.active.kid, next: rotated.next.kid };
      }
      const ttl = await this.#repo.longestTokenTtl(this.#config.accessTokenTtlSeconds, manager);
      for (const key of await this.#repo.all(manager)) {
        if (key.status === 'retired' && key.retiredAt!.getTime() + (ttl + CLOCK_TOLERANCE_SECONDS) * 1000 <= now.getTime()) {
          await this.#repo.remove(key.kid, manager);
          out.removed.push(key.kid);
        }
      }
      if (out.rotated || out.createdNext || out.removed.length) await this.#repo.notifyChanged(manager);
      return out;
    });
    if (result.rotated || result.createdNext || result.removed.length) {
      this.#logger.info('signing key maintenance', { ...result });
      await this.#ring.reload();
    }
    return result;
  }
}
