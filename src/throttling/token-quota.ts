import type { TokenQuota } from '../agents/agent.entity.ts';
import { Lru } from '../lib/lru.ts';
import { BUCKET_MS, bucketStart, type TokenCounter } from '../usage/token-counter.ts';

// Per-agent token quotas at /token (agent tokenQuota, else the org's tokensPerMinutePerAgent):
// agents that fetch a new token for every call are the most common abuse of an M2M IdP. The
// decision reads only memory (usage/token-counter.ts).

export interface QuotaRefusal {
  limit: keyof TokenQuota;
  quota: number;
  retryAfterSeconds: number;
  /** The first refusal of this agent in this window: the one that is recorded. */
  first: boolean;
}

const WINDOWS = [
  ['perMinute', 'minute'],
  ['perHour', 'hour'],
] as const;

export class TokenQuotas {
  readonly #counter: Pick<TokenCounter, 'count'>;
  readonly #now: () => number;
  readonly #refused = new Lru<string, true>(100_000);
  readonly #onRefusal: () => void;

  /** `onRefusal` is told of every refusal (metrics). */
  constructor(counter: Pick<TokenCounter, 'count'>, now: () => number = Date.now, onRefusal: () => void = () => {}) {
    this.#counter = counter;
    this.#now = now;
    this.#onRefusal = onRefusal;
  }

  /** Whether one more token for the agent would exceed its quota, and until when. */
  refusal(agentId: string, quota: TokenQuota | null): QuotaRefusal | undefined {
    if (!quota) return undefined;
    for (const [limit, bucket] of WINDOWS) {
      const max = quota[limit];
      if (max === undefined || this.#counter.count(agentId, bucket) < max) continue;
      const now = this.#now();
      const start = bucketStart(bucket, now);
      const key = `${agentId} ${bucket} ${start}`;
      const first = this.#refused.get(key) === undefined;
      if (first) this.#refused.set(key, true);
      this.#onRefusal();
      return { limit, quota: max, retryAfterSeconds: Math.max(1, Math.ceil((start + BUCKET_MS[bucket] - now) / 1000)), first };
    }
    return undefined;
  }
}
