import type { DataSource } from 'typeorm';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { SigningAlg } from '../../config/index.ts';
import type { Logger } from '../logger.ts';
import { KeysRepository } from './keys.repository.ts';
import type { KeyStatus, SigningKey } from './signing-key.entity.ts';
import { decryptPrivateKey, encryptPrivateKey, encryptionKeyId, KeyEncryptionError } from './key-encryption.ts';

/** What the OAuth engine needs: the private JWKs it may sign with and publish, and who signs now. */
export interface Keyset {
  /** Private JWKs (with kid, alg, use) of every published key; oidc-provider publishes their public halves. */
  privateJwks: JWK[];
  activeKid: string;
  activeAlg: SigningAlg;
  /** A stable fingerprint of the set, to tell when the provider must be rebuilt. */
  version: string;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

export function publicJwkOf(jwk: JWK): JWK {
  return Object.fromEntries(Object.entries(jwk).filter(([name]) => !PRIVATE_MEMBERS.includes(name))) as JWK;
}

export class KeysService {
  readonly #ds: DataSource;
  readonly #repo: KeysRepository;
  readonly #masterKey: Buffer;
  readonly #defaultAlg: SigningAlg;
  readonly #logger: Logger;

  constructor(dataSource: DataSource, masterKey: Buffer, defaultAlg: SigningAlg, logger: Logger) {
    this.#ds = dataSource;
    this.#repo = new KeysRepository(dataSource);
    this.#masterKey = masterKey;
    this.#defaultAlg = defaultAlg;
    this.#logger = logger;
  }

  /** A new key pair, its private half encrypted, not yet stored. */
  async generate(alg: SigningAlg, status: KeyStatus): Promise<SigningKey> {
    const { privateKey } = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
    const jwk = await exportJWK(privateKey);
    const publicJwk = publicJwkOf(jwk);
    const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
    const now = new Date();
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

  /** Makes sure one key signs: generates the first one at first start. Safe on several instances at once. */
  async ensureSigningKey(): Promise<void> {
    if (await this.#repo.active()) return;
    const key = await this.generate(this.#defaultAlg, 'active');
    try {
      await this.#repo.insert(key);
      this.#logger.info('generated the first signing key', { kid: key.kid, alg: key.alg });
    } catch (err) {
      // Another instance won the race (one active key, enforced by a unique index).
      if ((err as { driverError?: { code?: string } }).driverError?.code !== '23505') throw err;
    }
  }

  /** Decrypts every published key. A wrong master key stops here with a clear message. */
  async loadKeyset(): Promise<Keyset> {
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
}
