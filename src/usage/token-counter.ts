import type { Logger } from '../lib/logger.ts';
import { Lru } from '../lib/lru.ts';
import { utcDay, type AgentCount, type Bucket, type TokenCountsRepository } from './token-counts.repository.ts';

// Counts tokens as /token issues them: in memory at once (an increment, nothing else on the
// request's path), added to PostgreSQL once a second by one upsert, which also brings back
// every instance's totals for the buckets this instance touched. So usage never scans the
// audit log, and a quota holds across instances to within about a second of the others'
// issuing.

export const BUCKET_MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000 };
const BUCKETS: Bucket[] = ['minute', 'hour'];
const FLUSH_MS = 1_000;
const PURGE_EVERY = 3_600;

export const bucketStart = (bucket: Bucket, now: number) => Math.floor(now / BUCKET_MS[bucket]) * BUCKET_MS[bucket];

export class TokenCounter {
  readonly #repo: Pick<TokenCountsRepository, 'add' | 'purge'>;
  readonly #logger: Logger;
  readonly #now: () => number;
  /** Not yet added: `agent bucket start` → increment; `org day` → increment. */
  #agents = new Map<string, AgentCount>();
  #orgs = new Map<string, { orgId: string; day: string; tokens: number }>();
  /** Being added now: still counted until their totals are back. */
  #inFlight = new Map<string, AgentCount>();
  /** Every instance's total, as of this instance's last flush: `agent bucket` → {start, tokens}. */
  readonly #known = new Lru<string, { start: number; tokens: number }>(100_000);
  #flushing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #flushes = 0;

  constructor(repo: Pick<TokenCountsRepository, 'add' | 'purge'>, logger: Logger, now: () => number = Date.now) {
    this.#repo = repo;
    this.#logger = logger;
    this.#now = now;
  }

  /** A token was issued to `agentId` of `orgId`. */
  issued(agentId: string, orgId: string): void {
    const now = this.#now();
    for (const bucket of BUCKETS) {
      const start = bucketStart(bucket, now);
      const key = `${agentId} ${bucket} ${start}`;
      const pending = this.#agents.get(key);
      if (pending) pending.tokens++;
      else this.#agents.set(key, { agentId, bucket, start, tokens: 1 });
    }
    const day = utcDay(now);
    const orgKey = `${orgId} ${day}`;
    const org = this.#orgs.get(orgKey);
    if (org) org.tokens++;
    else this.#orgs.set(orgKey, { orgId, day, tokens: 1 });
  }

  /** Tokens issued to the agent in the current bucket: every instance's as of the last flush, plus this one's since. */
  count(agentId: string, bucket: Bucket): number {
    const start = bucketStart(bucket, this.#now());
    const known = this.#known.get(`${agentId} ${bucket}`);
    const key = `${agentId} ${bucket} ${start}`;
    return (known?.start === start ? known.tokens : 0) + (this.#agents.get(key)?.tokens ?? 0) + (this.#inFlight.get(key)?.tokens ?? 0);
  }

  /** Adds what is pending; resolves once added (or failed and kept for the next flush). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#flushOnce());
    return this.#flushing;
  }

  start(): void {
    this.#timer = setInterval(() => {
      void this.flush();
      if (++this.#flushes % PURGE_EVERY === 0) this.#repo.purge(this.#now()).catch((err) => this.#logger.warn('could not purge token counts', { err }));
    }, FLUSH_MS);
    this.#timer.unref();
  }

  /** Stops the timer and adds what is pending. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  async #flushOnce(): Promise<void> {
    if (!this.#agents.size && !this.#orgs.size) return;
    const agents = this.#agents;
    const orgs = this.#orgs;
    this.#agents = new Map();
    this.#orgs = new Map();
    this.#inFlight = agents;
    try {
      const totals = await this.#repo.add([...agents.values()], [...orgs.values()]);
      for (const t of totals) {
        const key = `${t.agentId} ${t.bucket}`;
        const known = this.#known.get(key);
        if (!known || known.start <= t.start) this.#known.set(key, { start: t.start, tokens: t.tokens });
      }
    } catch (err) {
      // Kept for the next flush: counted late rather than lost.
      for (const [key, a] of agents) {
        const now = this.#agents.get(key);
        if (now) now.tokens += a.tokens;
        else this.#agents.set(key, a);
      }
      for (const [key, o] of orgs) {
        const now = this.#orgs.get(key);
        if (now) now.tokens += o.tokens;
        else this.#orgs.set(key, o);
      }
      this.#logger.warn('could not store token counts; trying again in a second', { err });
    } finally {
      this.#inFlight = new Map();
    }
  }
}
