import type { Context } from 'koa';
import type { Logger } from '../lib/logger.ts';
import { Lru } from '../lib/lru.ts';
import type { Coherence } from '../coherence/coherence.ts';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { clientEvent } from '../audit/events.ts';
import type { AuthFailuresRepository } from './auth-failures.repository.ts';

// Brute-force throttling of client authentication (/token, /token/introspect, /token/revoke).
//
// Failures are counted per (client id, client IP) and per client IP, in PostgreSQL, so that
// every instance counts the same failures: spreading attempts over replicas gains nothing.
// Past the limit of a key within its window, that key is refused until the window has passed.
// The refusal is answered from memory alone (no bcrypt, no database read): the instance that
// counts the failure reaching the limit tells every instance, and waits until they have heard
// (Coherence.settle) before it answers, so the very next attempt is refused wherever it lands.
// A pair key keeps a real agent, using its own secret from its own address, out of reach of a
// stranger guessing its secret elsewhere; the per-IP limit is higher, since many agents may
// share one NAT address.

export interface AuthThrottleOptions {
  /** Failures of one (client id, IP) pair in a window before it is refused (AUTH_FAILURE_LIMIT). */
  pairLimit: number;
  /** Failures of one IP in a window before it is refused (AUTH_FAILURE_IP_LIMIT). */
  ipLimit: number;
  /** AUTH_FAILURE_WINDOW_SECONDS. */
  windowSeconds: number;
  /** Wall clock in ms (tests drive it). */
  now?: () => number;
}

export type ThrottledEndpoint = 'token' | 'introspect' | 'revoke';

interface Deps {
  repo: Pick<AuthFailuresRepository, 'record' | 'purge'>;
  coherence: Pick<Coherence, 'enabled' | 'announce' | 'settle' | 'onChange'>;
  auditWriter: Pick<AuditWriter, 'write'>;
  /** The org of a client id, to file its auth.throttled event where its admins see it. */
  orgOf: (clientId: string) => Promise<string | null>;
  logger: Logger;
  /** Told of every refusal (metrics). */
  onRefusal?: (endpoint: ThrottledEndpoint) => void;
}

const MAX_BLOCKS = 100_000;
const PURGE_EVERY_MS = 10 * 60_000;

const pairKey = (clientId: string, ip: string) => `pair:${clientId} ${ip}`;
const ipKey = (ip: string) => `ip:${ip}`;

export class AuthThrottle {
  readonly #deps: Deps;
  readonly #pairLimit: number;
  readonly #ipLimit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  /** key → until when (ms) it is refused. */
  readonly #blocks = new Lru<string, number>(MAX_BLOCKS);
  #purgeTimer: NodeJS.Timeout | undefined;

  constructor(deps: Deps, options: AuthThrottleOptions) {
    this.#deps = deps;
    this.#pairLimit = options.pairLimit;
    this.#ipLimit = options.ipLimit;
    this.#windowMs = options.windowSeconds * 1000;
    this.#now = options.now ?? Date.now;
    deps.coherence.onChange('throttle', (payload) => {
      // `<until ms>:<key>`; the key may hold colons (IPv6).
      const colon = payload.indexOf(':');
      const until = Number(payload.slice(0, colon));
      if (Number.isFinite(until)) this.#block(payload.slice(colon + 1), until);
    });
  }

  /** Seconds until this IP may try again, if it is refused now; from memory only. */
  refusedIp(ip: string, endpoint: ThrottledEndpoint): number | undefined {
    return this.#refused(ipKey(ip), endpoint);
  }

  /** Seconds until this client id may try again from this IP, if it is refused now; from memory only (the address alone is checked first, by refusedIp). */
  refusedPair(clientId: string, ip: string, endpoint: ThrottledEndpoint): number | undefined {
    return this.#refused(pairKey(clientId, ip), endpoint);
  }

  /**
   * Counts a failed authentication of `clientId` from `ip`. When that reaches a limit, the key is
   * refused on every instance before this returns, and auth.throttled is recorded (once per
   * refused period, by the instance whose failure reached the limit). A counter that cannot be
   * written does not fail the request: it is logged, and the answer stays 401.
   */
  async failed(ctx: Context, clientId: string, ip: string): Promise<void> {
    const now = this.#now();
    let counts;
    try {
      counts = await this.#deps.repo.record([pairKey(clientId, ip), ipKey(ip)], new Date(now), this.#windowMs);
    } catch (err) {
      this.#deps.logger.warn('could not count a failed client authentication', { requestId: ctx.state.requestId, err });
      return;
    }
    const reached: { key: string; until: number; failures: number }[] = [];
    for (const { key, failures, windowStartedAt } of counts) {
      const limit = key.startsWith('ip:') ? this.#ipLimit : this.#pairLimit;
      if (failures < limit) continue;
      const until = windowStartedAt.getTime() + this.#windowMs;
      this.#block(key, until);
      if (failures === limit) reached.push({ key, until, failures });
    }
    if (!reached.length) return;
    const { coherence } = this.#deps;
    if (coherence.enabled) {
      for (const { key, until } of reached) await coherence.announce('throttle', `${until}:${key}`);
      await coherence.settle();
    }
    for (const { key, until, failures } of reached) {
      const byIp = key.startsWith('ip:');
      const orgId = byIp ? null : await this.#deps.orgOf(clientId).catch(() => null);
      await this.#deps.auditWriter.write(
        clientEvent(
          ctx,
          { id: clientId, orgId },
          'auth.throttled',
          byIp ? { type: 'ip', id: ip } : { type: 'client', id: clientId },
          { scope: byIp ? 'ip' : 'client', clientId, ip, failures, windowSeconds: this.#windowMs / 1000, until: new Date(until) },
          { outcome: 'failure', agentId: orgId ? clientId : null },
        ),
      );
    }
  }

  /** Purges passed windows now and then (on every instance; the DELETE is cheap and idempotent). */
  start(): void {
    this.#purgeTimer = setInterval(() => {
      this.#deps.repo.purge(new Date(this.#now() - this.#windowMs)).catch((err) => this.#deps.logger.warn('could not purge auth failure counters', { err }));
    }, PURGE_EVERY_MS);
    this.#purgeTimer.unref();
  }

  stop(): void {
    clearInterval(this.#purgeTimer);
  }

  #block(key: string, until: number): void {
    const current = this.#blocks.get(key);
    if (current === undefined || current < until) this.#blocks.set(key, until);
  }

  #refused(key: string, endpoint: ThrottledEndpoint): number | undefined {
    const until = this.#blocks.get(key);
    if (until === undefined) return undefined;
    const left = until - this.#now();
    if (left <= 0) {
      this.#blocks.delete(key);
      return undefined;
    }
    this.#deps.onRefusal?.(endpoint);
    return Math.ceil(left / 1000);
  }
}
