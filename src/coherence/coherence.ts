import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { DataSource } from 'typeorm';
import type { Logger } from '../lib/logger.ts';

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
// the database; a writer waits at most that long for it. Without a LISTEN connection (the
// embedded database) nothing is cached and settle() returns at once.

export const STATE_CHANNEL = 'agent_idp_state';
export type StateKind = 'agent' | 'credential' | 'key' | 'jti';
const KINDS = new Set<string>(['agent', 'credential', 'key', 'jti']);

export interface CoherenceOptions {
  /** Connection string for the LISTEN connection; without it, the instance caches nothing. */
  listenUrl?: string;
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
  readonly #listenUrl: string | undefined;
  readonly #leaseMs: number;
  readonly #heartbeatMs: number;
  readonly #now: () => number;
  readonly #subscribers = new Map<StateKind, ((id: string) => void)[]>();
  readonly #resetListeners: (() => void)[] = [];
  readonly #barriers = new Map<string, (instanceId: string) => void>();
  #client: pg.Client | undefined;
  #leaseUntil = -Infinity;
  #generation = 0;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #beats = 0;
  #stopped = true;
  /** Queries on the LISTEN connection run one after another (pg runs one at a time per client). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(dataSource: DataSource, logger: Logger, options: CoherenceOptions = {}) {
    this.#ds = dataSource;
    this.#logger = logger;
    this.#listenUrl = options.listenUrl;
    this.#leaseMs = options.leaseMs ?? 4_000;
    this.#heartbeatMs = options.heartbeatMs ?? 1_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** False on the embedded database: there, nothing is cached and nothing needs settling. */
  get enabled(): boolean {
    return this.#listenUrl !== undefined;
  }

  /** May a cache answer now? Only while listening and within the lease. */
  usable(): boolean {
    return this.#client !== undefined && this.#now() < this.#leaseUntil;
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

  /** Connects and takes the first lease; on failure, tries again every second (start-up goes on). */
  async start(): Promise<void> {
    if (!this.enabled) return;
    this.#stopped = false;
    await this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#lose(client);
    if (client) {
      // Writers need not wait for an instance that has gone.
      await this.#onListener(client, 'DELETE FROM agent_idp_instances WHERE id = $1', [this.instanceId]).catch(() => {});
      await client.end().catch(() => {});
    }
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

  /** A query on the LISTEN connection, after the ones already asked for. */
  #onListener(client: pg.Client, text: string, values: unknown[]): Promise<pg.QueryResult> {
    const run = this.#queue.then(() => client.query(text, values));
    this.#queue = run.catch(() => {});
    return run;
  }

  #reset(): void {
    this.#generation++;
    for (const listener of this.#resetListeners) listener();
  }

  #onNotification(message: pg.Notification, client: pg.Client): void {
    if (message.channel !== STATE_CHANNEL || !message.payload || client !== this.#client) return;
    const payload = message.payload;
    const colon = payload.indexOf(':');
    const kind = payload.slice(0, colon);
    const rest = payload.slice(colon + 1);
    if (kind === 'barrier') {
      // Everything committed before the barrier has been handled by now (same connection, in order).
      this.#onListener(client, 'SELECT pg_notify($1, $2)', [STATE_CHANNEL, `ack:${rest}:${this.instanceId}`]).catch(() => {});
    } else if (kind === 'ack') {
      const [barrier, instanceId] = rest.split(':');
      this.#barriers.get(barrier)?.(instanceId);
    } else if (KINDS.has(kind)) {
      this.#generation++;
      for (const listener of this.#subscribers.get(kind as StateKind) ?? []) listener(rest);
    }
  }

  /** Stops trusting the caches at once; reconnects unless stopped. */
  #lose(client: pg.Client | undefined, err?: unknown): void {
    if (!client || this.#client !== client) return;
    this.#client = undefined;
    this.#leaseUntil = -Infinity;
    this.#reset();
    clearTimeout(this.#heartbeatTimer);
    client.removeAllListeners('notification');
    // When stopping, stop() gives the lease back on this connection, then ends it.
    if (this.#stopped) return;
    this.#dispose(client);
    this.#reconnectLater('lost the LISTEN connection for state changes; reading the database until it is back', err);
  }

  #dispose(client: pg.Client): void {
    client.removeAllListeners();
    client.on('error', () => {});
    client.end().catch(() => {});
  }

  #reconnectLater(message: string, err: unknown): void {
    if (this.#stopped) return;
    this.#logger.warn(message, { err });
    this.#reconnectTimer = setTimeout(() => void this.#connect(), 1_000);
    this.#reconnectTimer.unref();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#listenUrl, application_name: 'agent-idp-state-listener' });
    client.on('error', (err) => this.#lose(client, err));
    client.on('end', () => this.#lose(client));
    client.on('notification', (message) => this.#onNotification(message, client));
    try {
      await client.connect();
      await client.query(`LISTEN ${STATE_CHANNEL}`);
      if (this.#stopped) {
        await client.end();
        return;
      }
      // Whatever changed while nobody listened is unknown: start from nothing.
      this.#client = client;
      this.#reset();
      await this.#heartbeat(client);
    } catch (err) {
      if (this.#client === client) {
        this.#lose(client, err);
      } else {
        this.#dispose(client);
        this.#reconnectLater('could not open the LISTEN connection for state changes; trying again in 1 s', err);
      }
    }
  }

  async #heartbeat(client: pg.Client): Promise<void> {
    if (this.#client !== client) return;
    const sentAt = this.#now();
    // A renewal that does not come back within a lease means the connection is gone.
    const timeout = setTimeout(() => this.#lose(client, new Error('lease renewal timed out')), this.#leaseMs);
    try {
      await this.#onListener(
        client,
        `INSERT INTO agent_idp_instances (id, lease_until, host) VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond', $3)
         ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until`,
        [this.instanceId, this.#leaseMs, hostname().slice(0, 200)],
      );
      if (++this.#beats % 600 === 1) {
        // Instances that stopped without saying so.
        await this.#onListener(client, `DELETE FROM agent_idp_instances WHERE lease_until < now() - interval '1 hour'`, []);
      }
    } catch (err) {
      this.#lose(client, err);
      return;
    } finally {
      clearTimeout(timeout);
    }
    if (this.#client !== client) return;
    // Counted from when the renewal left: it ends here no later than in the database.
    this.#leaseUntil = sentAt + this.#leaseMs;
    this.#heartbeatTimer = setTimeout(() => void this.#heartbeat(client), this.#heartbeatMs);
    this.#heartbeatTimer.unref();
  }
}
