import type { Logger } from '../lib/logger.ts';
import { SECRET_KEY, redactString } from '../lib/redaction.ts';
import { AUDIT_ACTIONS, AUDIT_ACTOR_TYPES, AUDIT_OUTCOMES, newEventId, type AuditEvent, type AuditEventInput } from './audit-event.ts';
import { AuditRepository, utcDay, type Queryable } from './audit.repository.ts';
import { isUuid } from '../lib/ids.ts';

// Durable, batched audit writes (group commit). write() resolves only once the INSERT holding
// the event has committed, so a request that awaits it answers after its event is stored; the
// events of concurrent requests share one multi-row INSERT, so that auditing /token costs one
// round trip per batch rather than per request. The batching clocks itself: when no INSERT is
// running, what was written during the current turn of the event loop goes at once (no timer
// to wait for); while one runs, the next batch fills up and goes the moment it commits. The
// busier the server, the larger the batches, with no added latency when it is idle. Two INSERTs
// may run at once (maxInFlight): a batch that fills while one commits goes on its own connection
// rather than waiting for it, so that a fast endpoint (introspection) does not leave the core idle
// with every request in the closed loop waiting for one commit.
//
// Callers must not await write() while holding the database connection themselves (inside a
// transaction): the embedded database has one connection, and the writer needs it.

export interface AuditWriterOptions {
  /** Events per INSERT at most (default 500). */
  maxBatch?: number;
  /** INSERTs running at once at most (default 2; each on a pooled connection). */
  maxInFlight?: number;
  /**
   * How long the first event of a batch waits for company while no INSERT is running: 0 (the
   * default) sends it after the current turn of the event loop (setImmediate).
   */
  flushIntervalMs?: number;
  now?: () => Date;
  /** What else is stored with the events it wants, in the same transaction (the webhook outbox). */
  follower?: AuditFollower;
}

/**
 * Rows derived from some events and stored in the same transaction as they are (the webhook
 * outbox, src/webhooks/outbox.ts), so that nothing acknowledged is lost on a crash. A batch with
 * no event it wants is stored as before, in one INSERT without a transaction: what /token
 * writes (token.issued) is never wanted, so the outbox costs /token nothing.
 */
export interface AuditFollower {
  /** Cheap and synchronous: it runs once per event of every batch. */
  wants(event: AuditEvent): boolean;
  store(events: AuditEvent[], db: Queryable): Promise<void>;
  /** After the transaction committed (a sender may go at once rather than at its next poll). */
  committed(events: AuditEvent[]): void;
}

/** What the writer tells as it goes (metrics): each stored event, and how long each INSERT took. */
export interface AuditWriterObserver {
  stored(event: AuditEvent): void;
  batchWritten(seconds: number, ok: boolean): void;
}

interface Pending {
  event: AuditEvent;
  resolve: (event: AuditEvent) => void;
  reject: (err: unknown) => void;
}

const ACTIONS = new Set<string>(AUDIT_ACTIONS);
const ACTOR_TYPES = new Set<string>(AUDIT_ACTOR_TYPES);
const OUTCOMES = new Set<string>(AUDIT_OUTCOMES);

const MAX_DEPTH = 8;
// eslint-disable-next-line no-control-regex -- NUL is exactly what must not reach PostgreSQL
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text as PostgreSQL stores it: no NUL (text and jsonb refuse it, which would fail the whole
 * batch), no lone surrogate (jsonb refuses it), our secrets and JWTs redacted, bounded length.
 */
function cleanText(value: string, max: number): string {
  const text = redactString(value.replace(UNSTORABLE, '\uFFFD'));
  // Cut after redacting (a cut secret would no longer match), then mend a split surrogate pair.
  return text.length > max ? `${text.slice(0, max).replace(UNSTORABLE, '\uFFFD')}…` : text;
}

function cleanNullable(value: string | null | undefined, max: number): string | null {
  return value === null || value === undefined ? null : cleanText(String(value), max);
}

/** details as stored: secret-named keys dropped, secrets inside strings redacted. */
export function scrubDetails(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return cleanText(value, 4096);
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'boolean' || value === null) return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value !== 'object') return null;
  if (depth >= MAX_DEPTH) return '[TRUNCATED]';
  if (Array.isArray(value)) return value.map((v) => scrubDetails(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (SECRET_KEY.test(key) || v === undefined) continue;
    out[cleanText(key, 200)] = scrubDetails(v, depth + 1);
  }
  return out;
}

/** The event as it will be stored, or a TypeError for a caller's mistake. */
function prepare(input: AuditEventInput, eventId: string, occurredAt: Date): AuditEvent {
  if (!ACTIONS.has(input.action)) throw new TypeError(`unknown audit action ${String(input.action)}`);
  if (!ACTOR_TYPES.has(input.actor?.type)) throw new TypeError(`unknown audit actor type ${String(input.actor?.type)}`);
  if (!OUTCOMES.has(input.outcome)) throw new TypeError(`audit outcome must be success or failure, got ${String(input.outcome)}`);
  if (typeof input.target?.type !== 'string' || !input.target.type) throw new TypeError('an audit event needs a target type');
  if (input.orgId !== null && !isUuid(input.orgId ?? '')) throw new TypeError('an audit event needs an orgId (a UUID, or null)');
  if (input.agentId !== undefined && input.agentId !== null && !isUuid(input.agentId)) throw new TypeError('agentId must be a UUID or null');

  const actor = { type: input.actor.type, id: cleanNullable(input.actor.id, 200) };
  const target = { type: cleanText(input.target.type, 64), id: cleanNullable(input.target.id, 512) };
  // The agent the event is about: said explicitly, else the target agent, else the acting agent or client.
  const subject =
    input.agentId !== undefined ? input.agentId : target.type === 'agent' ? target.id : actor.type === 'agent' || actor.type === 'client' ? actor.id : null;
  return {
    eventId,
    occurredAt,
    orgId: input.orgId === null ? null : input.orgId.toLowerCase(),
    actor,
    action: input.action,
    target,
    outcome: input.outcome,
    requestId: cleanNullable(input.requestId, 128),
    ip: cleanNullable(input.ip, 64),
    userAgent: cleanNullable(input.userAgent, 512),
    details: (scrubDetails(input.details ?? {}) ?? {}) as Record<string, unknown>,
    agentId: subject && isUuid(subject) ? subject.toLowerCase() : null,
  };
}

export class AuditWriter {
  readonly #repo: AuditRepository;
  readonly #logger: Logger;
  readonly #maxBatch: number;
  readonly #flushIntervalMs: number;
  readonly #now: () => Date;
  #pending: Pending[] = [];
  /** Cancels the scheduled start of the next batch, when one is scheduled. */
  #cancelScheduled: (() => void) | undefined;
  #closed = false;
  readonly #maxInFlight: number;
  /** INSERTs running now, and their events. */
  #inFlight = 0;
  #writing = 0;
  /** Waiting for the writer to be idle (flush). */
  #idle: (() => void)[] = [];
  #lastBatchFailed = false;
  #lastFailureAt = -Infinity;
  #observer: AuditWriterObserver | undefined;
  readonly #follower: AuditFollower | undefined;

  constructor(repo: AuditRepository, logger: Logger, options: AuditWriterOptions = {}) {
    this.#repo = repo;
    this.#logger = logger;
    this.#maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 500));
    this.#flushIntervalMs = Math.max(0, options.flushIntervalMs ?? 0);
    this.#maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? 2));
    this.#now = options.now ?? (() => new Date());
    this.#follower = options.follower;
  }

  /**
   * Stores events inside the caller's transaction, with what the follower derives from them:
   * they commit or roll back with the caller's own change (a job that claims something and
   * announces it). Not batched; the caller holds the connection.
   */
  async storeWithin(db: Queryable, inputs: AuditEventInput[]): Promise<AuditEvent[]> {
    if (this.#closed) throw new Error('the audit writer is closed');
    const events = inputs.map((input) => {
      const occurredAt = this.#now();
      return prepare(input, newEventId(occurredAt), occurredAt);
    });
    await this.#repo.insertMany(events, db);
    const followed = this.#follower ? events.filter((e) => this.#follower!.wants(e)) : [];
    if (followed.length) await this.#follower!.store(followed, db);
    return events;
  }

  /** Tells the follower that events stored with storeWithin have committed. */
  committed(events: AuditEvent[]): void {
    const followed = this.#follower ? events.filter((e) => this.#follower!.wants(e)) : [];
    if (followed.length) this.#follower!.committed(followed);
    for (const e of events) this.#observer?.stored(e);
  }

  /** Stores the event; resolves with it once committed, rejects if it could not be stored. */
  write(input: AuditEventInput): Promise<AuditEvent> {
    if (this.#closed) return Promise.reject(new Error('the audit writer is closed'));
    let event: AuditEvent;
    try {
      const occurredAt = this.#now();
      event = prepare(input, newEventId(occurredAt), occurredAt);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AuditEvent>((resolve, reject) => {
      this.#pending.push({ event, resolve, reject });
      if (this.#pending.length >= this.#maxBatch) this.#startDraining();
      // A free slot: this turn's events go after it; none free: they go when an INSERT commits.
      else if (!this.#cancelScheduled && this.#inFlight < this.#maxInFlight) this.#schedule();
    });
  }

  /** Events not yet committed: waiting for a batch, or in the INSERT running now. */
  get queueDepth(): number {
    return this.#pending.length + this.#writing;
  }

  /**
   * When the most recent INSERT failed (performance.now() ms), or undefined while the most
   * recent one succeeded (or none ran yet).
   */
  get lastFailureAt(): number | undefined {
    return this.#lastBatchFailed ? this.#lastFailureAt : undefined;
  }

  /** One observer (the metrics); it must not throw and must be cheap: it runs once per event. */
  observe(observer: AuditWriterObserver): void {
    this.#observer = observer;
  }

  /** Resolves once every event written before the call has been stored or has failed. */
  async flush(): Promise<void> {
    if (this.#pending.length) this.#startDraining();
    while (this.#inFlight > 0 || this.#pending.length) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** Flushes everything pending and refuses new writes (SIGTERM, after the HTTP server drained). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  #schedule(): void {
    const start = () => this.#startDraining();
    if (this.#flushIntervalMs === 0) {
      const immediate = setImmediate(start);
      this.#cancelScheduled = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(start, this.#flushIntervalMs);
      this.#cancelScheduled = () => clearTimeout(timer);
    }
  }

  #startDraining(): void {
    this.#cancelScheduled?.();
    this.#cancelScheduled = undefined;
    while (this.#pending.length && this.#inFlight < this.#maxInFlight) void this.#writeBatch(this.#pending.splice(0, this.#maxBatch));
  }

  /** One INSERT; its failure fails only its own writes. When it is done, what queued meanwhile goes. */
  async #writeBatch(batch: Pending[]): Promise<void> {
    this.#inFlight++;
    this.#writing += batch.length;
    const started = performance.now();
    try {
      await this.#insert(batch.map((p) => p.event));
      this.#lastBatchFailed = false;
      this.#observer?.batchWritten((performance.now() - started) / 1000, true);
      for (const p of batch) {
        p.resolve(p.event);
        this.#observer?.stored(p.event);
      }
    } catch (err) {
      this.#lastBatchFailed = true;
      this.#lastFailureAt = performance.now();
      this.#observer?.batchWritten((this.#lastFailureAt - started) / 1000, false);
      this.#logger.error('audit events could not be stored; their requests fail', {
        events: batch.length,
        requestIds: batch
          .map((p) => p.event.requestId)
          .filter(Boolean)
          .slice(0, 20),
        err,
      });
      for (const p of batch) p.reject(err);
    } finally {
      this.#inFlight--;
      this.#writing -= batch.length;
      if (this.#pending.length) this.#startDraining();
      else if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #insert(events: AuditEvent[]): Promise<void> {
    const follower = this.#follower;
    const followed = follower ? events.filter((e) => follower.wants(e)) : [];
    const store = () => (followed.length ? this.#repo.insertManyWith(events, (db) => follower!.store(followed, db)) : this.#repo.insertMany(events));
    try {
      await store();
    } catch (err) {
      if (!AuditRepository.isMissingPartition(err)) throw err;
      // The maintenance job creates days ahead; should it not have run, make the days now.
      const days = [...new Set(events.map((e) => utcDay(e.occurredAt)))];
      for (const day of days) {
        if (await this.#repo.createPartition(day)) this.#logger.warn('created a missing audit partition', { day });
      }
      await store();
    }
    if (followed.length) follower!.committed(followed);
  }
}
