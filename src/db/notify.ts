import pg from 'pg';
import type { Logger } from '../lib/logger.ts';

// One LISTEN connection per instance, supervised: every part of the instance that hears the
// other instances (the key ring, coherence) subscribes to a channel here, and is told when the
// connection comes up and when it is lost. A lost connection is reconnected every second until
// it is back; while it is down, subscribers fall back to reading the database (and may have
// missed notifications, which is why they are told). Queries that must ride on this very
// session (coherence's lease renewals and barrier acknowledgements) go through query(), one
// after another.
//
// Without a connection string (the embedded database: PGlite is one session and has no other
// sessions to notify) the connection is disabled: nothing connects, and subscribers poll.

/** The NOTIFY channels of agent-idp (sent by triggers and by the services that change state). */
export type Channel = 'agent_idp_keys' | 'agent_idp_state';

export interface NotifyOptions {
  /** Seen in pg_stat_activity (tests cut the connection by it). */
  applicationName?: string;
  reconnectMs?: number;
}

export const LISTENER_APPLICATION_NAME = 'agent-idp-listener';

export class NotifyConnection {
  readonly #url: string | undefined;
  readonly #logger: Logger;
  readonly #applicationName: string;
  readonly #reconnectMs: number;
  readonly #channels = new Map<Channel, ((payload: string) => void)[]>();
  readonly #onConnect: ((epoch: number) => Promise<void> | void)[] = [];
  readonly #onLose: (() => void)[] = [];
  #client: pg.Client | undefined;
  #epoch = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #stopped = true;
  /** Queries on this connection run one after another (pg runs one at a time per client). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(url: string | undefined, logger: Logger, options: NotifyOptions = {}) {
    this.#url = url;
    this.#logger = logger;
    this.#applicationName = options.applicationName ?? LISTENER_APPLICATION_NAME;
    this.#reconnectMs = options.reconnectMs ?? 1_000;
  }

  /** False on the embedded database: nothing to listen to. */
  get enabled(): boolean {
    return this.#url !== undefined;
  }

  /** Up and listening on every channel. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** Counts connections: what a subscriber started on one connection stops when the epoch moves on. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Subscribes to a channel; register before start(). Payloads of a lost connection are never delivered late. */
  listen(channel: Channel, handler: (payload: string) => void): void {
    const handlers = this.#channels.get(channel) ?? [];
    handlers.push(handler);
    this.#channels.set(channel, handlers);
  }

  /** Called, and awaited by start(), each time the connection is up (again), with its epoch. */
  onConnect(handler: (epoch: number) => Promise<void> | void): void {
    this.#onConnect.push(handler);
  }

  /** Called when the connection is lost: notifications may have been missed since. */
  onLose(handler: () => void): void {
    this.#onLose.push(handler);
  }

  /** Connects; on failure, tries again every reconnectMs (start-up goes on without it). */
  async start(): Promise<void> {
    if (!this.enabled) return;
    this.#stopped = false;
    await this.#connect();
  }

  /** A query on this session, after the ones already asked for; fails when the connection is down. */
  query(text: string, values: unknown[] = []): Promise<pg.QueryResult> {
    const client = this.#client;
    if (!client) return Promise.reject(new Error('the LISTEN connection is down'));
    const run = this.#queue.then(() => client.query(text, values));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** A subscriber found the connection dead (a renewal that never came back): drop it and reconnect. */
  lose(err?: unknown): void {
    this.#lose(this.#client, err);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#lose(client);
    if (client) await client.end().catch(() => {});
  }

  #lose(client: pg.Client | undefined, err?: unknown): void {
    if (!client || this.#client !== client) return;
    this.#client = undefined;
    this.#epoch++;
    client.removeAllListeners();
    client.on('error', () => {});
    for (const handler of this.#onLose) handler();
    if (this.#stopped) return;
    client.end().catch(() => {});
    this.#reconnectLater('lost the LISTEN connection; reading the database until it is back', err);
  }

  #reconnectLater(message: string, err: unknown): void {
    if (this.#stopped) return;
    this.#logger.warn(message, { err });
    this.#reconnectTimer = setTimeout(() => void this.#connect(), this.#reconnectMs);
    this.#reconnectTimer.unref();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, application_name: this.#applicationName });
    client.on('error', (err) => this.#lose(client, err));
    client.on('end', () => this.#lose(client));
    client.on('notification', (message) => {
      if (client !== this.#client || message.payload === undefined) return;
      for (const handler of this.#channels.get(message.channel as Channel) ?? []) handler(message.payload);
    });
    try {
      await client.connect();
      for (const channel of this.#channels.keys()) await client.query(`LISTEN ${channel}`);
      if (this.#stopped) {
        await client.end();
        return;
      }
      this.#client = client;
      const epoch = ++this.#epoch;
      for (const handler of this.#onConnect) {
        if (this.#epoch !== epoch) return;
        await handler(epoch);
      }
    } catch (err) {
      if (this.#client === client) {
        this.#lose(client, err);
      } else {
        client.removeAllListeners();
        client.on('error', () => {});
        client.end().catch(() => {});
        this.#reconnectLater('could not open the LISTEN connection; trying again in 1 s', err);
      }
    }
  }
}
