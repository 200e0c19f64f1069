import type { Context, Next } from 'koa';
import { Lru } from '../lib/lru.ts';
import { TooManyRequests } from '../http/errors.ts';
import type { ManagementState } from '../http/state.ts';

// The management API's rate limit: a token bucket per bearer token (MANAGEMENT_RATE_LIMIT
// requests per second, bursts up to MANAGEMENT_RATE_BURST), per instance. A runaway script
// with one token cannot starve the API for everyone else; a refused request has read and
// changed nothing (the bucket is checked right after the token, before the body is read).

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #buckets: Lru<string, Bucket>;

  /** `ratePerSecond` refills, up to `burst`; `now` in ms. */
  constructor(ratePerSecond: number, burst: number, now: () => number = Date.now, maxKeys = 100_000) {
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#now = now;
    // A key pushed out starts again with a full bucket: the bound only costs precision.
    this.#buckets = new Lru(maxKeys);
  }

  /** Takes one request for `key`: undefined when allowed, else the seconds until one is. */
  take(key: string): number | undefined {
    const now = this.#now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * this.#rate);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate));
  }
}

/** Route middleware after bearer authentication: 429 problem+json past the token's rate. */
export function rateLimitPerToken(buckets: TokenBuckets, onRefusal: () => void = () => {}) {
  return function limitManagementRate(ctx: Context & { state: ManagementState }, next: Next) {
    const wait = buckets.take(ctx.state.actor.jti);
    if (wait !== undefined) {
      onRefusal();
      throw new TooManyRequests(`more than the allowed management requests per second for this access token; try again in ${wait} s`, wait);
    }
    return next();
  };
}
