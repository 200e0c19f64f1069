import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTHeaderParameters, type FlattenedJWSInput } from 'jose';
import { type FetchLike } from './http.ts';

// The issuer's JWKS, kept as long as its Cache-Control says and never longer than 10 minutes;
// on a kid it does not know, fetched again, at most once per 30 s. jose's createRemoteJWKSet
// has the cooldown but a fixed cacheMaxAge: it does not read Cache-Control.

export const MAX_AGE_MS = 600_000;
export const UNKNOWN_KID_COOLDOWN_MS = 30_000;
// After a failed refetch, the keys in hand are used this much longer before the next try.
const RETRY_AFTER_FAILURE_MS = 30_000;

type KeySet = ReturnType<typeof createLocalJWKSet>;

/** `max-age` of a Cache-Control header (ms), 0 for no-store/no-cache, undefined when it says neither. */
export function maxAgeMs(cacheControl: string | null): number | undefined {
  if (!cacheControl) return undefined;
  if (/(^|,)\s*(no-store|no-cache)\s*(,|$)/i.test(cacheControl)) return 0;
  const match = /(^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(cacheControl);
  return match ? Number(match[2]) * 1000 : undefined;
}

export class JwksCache {
  readonly #url: () => Promise<string>;
  readonly #fetch: FetchLike;
  readonly #now: () => number;
  #keys: KeySet | undefined;
  #fetchedAt = -Infinity;
  #expiresAt = -Infinity;
  #refreshing: Promise<void> | undefined;

  constructor(url: () => Promise<string>, fetchImpl: FetchLike, now: () => number) {
    this.#url = url;
    this.#fetch = fetchImpl;
    this.#now = now;
  }

  /** A jose key resolver: the public key the token's header names. */
  readonly key = async (header: JWTHeaderParameters, token: FlattenedJWSInput) => {
    if (!this.#keys || this.#now() >= this.#expiresAt) await this.#refresh();
    try {
      return await this.#keys!(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || this.#now() - this.#fetchedAt < UNKNOWN_KID_COOLDOWN_MS) throw err;
      // A manual rotation or a new key: the cached set may predate it.
      await this.#refresh();
      return this.#keys!(header, token);
    }
  };

  #refresh(): Promise<void> {
    this.#refreshing ??= this.#load().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  async #load(): Promise<void> {
    const url = await this.#url();
    try {
      const res = await this.#fetch(url, { headers: { accept: 'application/jwk-set+json, application/json' } });
      if (!res.ok) throw new Error(`the JWKS at ${url} answered ${res.status}`);
      const set = (await res.json()) as JSONWebKeySet;
      const now = this.#now();
      this.#keys = createLocalJWKSet(set);
      this.#fetchedAt = now;
      this.#expiresAt = now + Math.min(maxAgeMs(res.headers.get('cache-control')) ?? MAX_AGE_MS, MAX_AGE_MS);
    } catch (err) {
      // Keys in hand beat no keys: a JWKS outage does not stop verification of known keys.
      if (!this.#keys) throw err;
      this.#expiresAt = this.#now() + RETRY_AFTER_FAILURE_MS;
    }
  }
}
