import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { DataSource } from 'typeorm';
import type { Logger } from '../lib/logger.ts';
import type { NotifyConnection } from '../db/notify.ts';

// Lets an instance answer from memory what it would otherwise read from PostgreSQL on every
// request (is this agent active, is this credential good, is this jti or key revoked), without
// giving up "a change acknowledged by one instance holds on every instance at once".
//
// - Every change to those rows sends `<kind>:<id>` on STATE_CHANNEL when it commits (triggers,
//   migrations/…-CreateStateNotifications.ts). Each instance LISTENs and forgets that entry.
// - Each instance holds a lease in agent_idp_instances, renewed every second over its LISTEN
//   connection. Its caches answer only while that connection is up and the lease it last
//   renewed still runs, counted from when the renewal was *sent*, so that its own idea of the
//   lease ends no later than the database's.
// - A writer calls settle() after its change has committed and before it answers: it sends a
//   barrier on the same channel and waits until every instance holding a lease has acknowledged
//   it, or that instance's lease has run out. Notifications arrive in commit order, so an
//   instance that acknowledges the barrier has already forgotten what the change touched.
//
// An instance that is cut off or stalled loses its lease within LEASE_MS and from then on reads
// the database; a writer waits at most that long for it. The LISTEN connection is the
// instance's one supervised connection (db/notify.ts), shared with the key ring; without one
// (the embedded database) nothing is cached and settle() returns at once.

export const STATE_CHANNEL = 'agent_idp_state';
// `org`: an org's limits changed (agents cached with them must be read again); `throttle`: an
// instance started refusing a client or an address (src/throttling/auth-throttle.ts);
// `agentkeys`: a credential of the agent changed (its key credentials are cached together).
export type StateKind = 'agent' | 'credential' | 'agentkeys' | 'key' | 'jti' | 'org' | 'throttle';
const KINDS = new Set<string>(['agent', 'credential', 'agentkeys', 'key', 'jti', 'org', 'throttle']);

export interface CoherenceOptions {
  /** How long a renewed lease runs (default 4 s). */
  leaseMs?: number;
  /** How often the lease is renewed (default 1 s). */
  heartbeatMs?: number;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
}

export class Coherence {
  readonly instanceId = randomUUID();
  readonly #ds: DataSource;
  readonly #logger: Logger;
  readonly #notify: NotifyConnection;
  readonly #leaseMs: number;
  readonly #heartbeatMs: number;
  readonly #now: () => number;
  readonly #subscribers = new Map<StateKind, ((id: string) => void)[]>();
  readonly #resetListeners: (() => void)[] = [];
  readonly #barriers = new Map<string, (instanceId: string) => void>();
  #leaseUntil = -Infinity;
  #generation = 0;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #beats = 0;
  #stopped = false;

  constructor(dataSource: DataSource, notify: NotifyConnection, logger: Logger, options: CoherenceOptions = {}) {
    this.#ds = dataSource;
    this.#logger = logger;
    this.#notify = notify;
    this.#leaseMs = options.leaseMs ?? 4_000;
    this.#heartbeatMs = options.heartbeatMs ?? 1_000;
    this.#now = options.now ?? (() => performance.now());
    notify.listen(STATE_CHANNEL, (payload) => this.#onNotification(payload));
    // Whatever changed while nobody listened is unknown: start from nothing, and take a lease.
    notify.onConnect(async (epoch) => {
      if (this.#stopped) return;
      this.#reset();
      await this.#heartbeat(epoch);
    });
    notify.onLose(() => {
      this.#leaseUntil = -Infinity;
      clearTimeout(this.#heartbeatTimer);
      this.#reset();
    });
  }

  /** False on the embedded database: there, nothing is cached and nothing needs settling. */
  get enabled(): boolean {
    return this.#notify.enabled;
  }

  /** May a cache answer now? Only while listening and within the lease. */
  usable(): boolean {
    return this.#notify.connected && this.#now() < this.#leaseUntil;
  }

  /**
   * Changes with every notification heard and every reset: a value read from the database may
   * be cached only if the generation is the same after the read as before it.
   */
  get generation(): number {
    return this.#generation;
  }

  onChange(kind: StateKind, listener: (id: string) => void): void {
    const list = this.#subscribers.get(kind) ?? [];
    list.push(listener);
    this.#subscribers.set(kind, list);
  }

  /** Called when whatever was cached can no longer be trusted (the LISTEN connection changed). */
  onReset(listener: () => void): void {
    this.#resetListeners.push(listener);
  }

  /** Stops answering from memory and gives the lease back, so that writers need not wait for an instance that has gone. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#heartbeatTimer);
    this.#leaseUntil = -Infinity;
    this.#reset();
    if (this.#notify.connected) await this.#notify.query('DELETE FROM agent_idp_instances WHERE id = $1', [this.instanceId]).catch(() => {});
  }

  /** Tells every instance (this one too) of `<kind>:<id>`, as the triggers do for rows; settle() after it waits for them to hear it. */
  async announce(kind: StateKind, id: string): Promise<void> {
    if (!this.enabled) return;
    await this.#ds.query('SELECT pg_notify($1, $2)', [STATE_CHANNEL, `${kind}:${id}`]);
  }

  /**
   * Resolves once every instance holding a lease has taken in the changes committed before the
   * call (or has lost its lease). Writers call it after commit, before they answer.
   */
  async settle(): Promise<void> {
    if (!this.enabled) return;
    const barrier = randomUUID();
    const acked = new Set<string>();
    let wake = () => {};
    this.#barriers.set(barrier, (instanceId) => {
      acked.add(instanceId);
      wake();
    });
    try {
      await this.#ds.query('SELECT pg_notify($1, $2)', [STATE_CHANNEL, `barrier:${barrier}`]);
      const rows: { id: string; remaining_ms: number }[] = await this.#ds.query(
        `SELECT id, (extract(epoch FROM lease_until - clock_timestamp()) * 1000)::float8 AS remaining_ms
           FROM agent_idp_instances WHERE lease_until > clock_timestamp()`,
      );
      const started = this.#now();
      const waiting = new Map(rows.map((r) => [r.id, started + r.remaining_ms]));
      for (;;) {
        const now = this.#now();
        for (const [id, leaseEnd] of waiting) if (acked.has(id) || leaseEnd <= now) waiting.delete(id);
        if (waiting.size === 0) return;
        const until = Math.min(...waiting.values());
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, until - now));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } catch (err) {
      // The database is out of reach, and with it every instance's LISTEN connection: waiting out
      // a lease means every instance has stopped answering from memory.
      this.#logger.warn('could not confirm a change with the other instances; waiting out their leases', { err });
      await new Promise((resolve) => setTimeout(resolve, this.#leaseMs));
    } finally {
      this.#barriers.delete(barrier);
    }
  }

  #reset(): void {
    this.#generation++;
    for (const listener of this.#resetListeners) listener();
  }

  #onNotification(payload: string): void {
    const colon = payload.indexOf(':');
    const kind = payload.slice(0, colon);
    const rest = payload.slice(colon + 1);
    if (kind === 'barrier') {
      // Everything committed before the barrier has been handled by now (same connection, in order).
      this.#notify.query('SELECT pg_notify($1, $2)', [STATE_CHANNEL, `ack:${rest}:${this.instanceId}`]).catch(() => {});
    } else if (kind === 'ack') {
      const [barrier, instanceId] = rest.split(':');
      this.#barriers.get(barrier)?.(instanceId);
    } else if (KINDS.has(kind)) {
      this.#generation++;
      for (const listener of this.#subscribers.get(kind as StateKind) ?? []) listener(rest);
    }
  }

  async #heartbeat(epoch: number): Promise<void> {
    if (this.#stopped || this.#notify.epoch !== epoch) return;
    const sentAt = this.#now();
    // A renewal that does not come back within a lease means the connection is gone.
    const timeout = setTimeout(() => {
      if (this.#notify.epoch === epoch) this.#notify.lose(new Error('lease renewal timed out'));
    }, this.#leaseMs);
    try {
      await this.#notify.query(
        `INSERT INTO agent_idp_instances (id, lease_until, host) VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond', $3)
         ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until`,
        [this.instanceId, this.#leaseMs, hostname().slice(0, 200)],
      );
      if (++this.#beats % 600 === 1) {
        // Instances that stopped without saying so.
        await this.#notify.query(`DELETE FROM agent_idp_instances WHERE lease_until < now() - interval '1 hour'`);
      }
    } catch (err) {
      if (this.#notify.epoch === epoch) this.#notify.lose(err);
      return;
    } finally {
      clearTimeout(timeout);
    }
    if (this.#stopped || this.#notify.epoch !== epoch) return;
    // Counted from when the renewal left: it ends here no later than in the database.
    this.#leaseUntil = sentAt + this.#leaseMs;
    this.#heartbeatTimer = setTimeout(() => void this.#heartbeat(epoch), this.#heartbeatMs);
    this.#heartbeatTimer.unref();
  }
}
