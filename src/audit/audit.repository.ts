import type { DataSource } from 'typeorm';
import { ValidationFailed } from '../http/errors.ts';
import { eventIdTime, type AuditAction, type AuditEvent, type AuditOutcome } from './audit-event.ts';
import { isUuid } from '../lib/ids.ts';
import { DAY_MS } from '../lib/time.ts';

// All SQL of the audit log. Every read takes the org id and puts it in the WHERE; pages are
// keyset pages on (occurred_at DESC, event_id DESC), the order of every index of the table,
// so a page deep in the set costs what the first one does.

/** Anything that runs SQL: the DataSource, an EntityManager, a QueryRunner. */
export interface Queryable {
  query(sql: string, parameters?: unknown[]): Promise<any>;
}

export interface AuditFilters {
  /** The agent the event is about (audit_events.agent_id). */
  agentId?: string;
  action?: string;
  outcome?: AuditOutcome;
  actorId?: string;
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
}

export interface AuditScopeOptions {
  /** Also the events that belong to no org (system jobs, unknown clients): for the service's operators. */
  includeUnowned?: boolean;
}

export interface AuditPageResult {
  rows: AuditEvent[];
  /** Opaque; null on the last page. */
  nextCursor: string | null;
}

interface Position {
  /** occurred_at to the microsecond, ISO 8601 UTC. */
  occurredAt: string;
  eventId: string;
}

const COLUMNS = `event_id, occurred_at, org_id, actor_type, actor_id, action, target_type, target_id, agent_id,
  outcome, request_id, ip, user_agent, details,
  to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position`;
const NEWEST_FIRST = 'ORDER BY occurred_at DESC, event_id DESC';
const POSITION = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)\|([0-9a-f-]{36})$/;

// ---- partitions: one per UTC day, named audit_events_pYYYYMMDD ----

const PARTITION_NAME = /^audit_events_p(\d{4})(\d{2})(\d{2})$/;
/** How far back from the newest possible event each successive query of a page reaches. */
const WINDOW_DAYS = [1, 7, 30, Infinity];

/** The UTC day of an instant, YYYY-MM-DD. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

export function partitionName(day: string): string {
  return `audit_events_p${day.replace(/-/g, '')}`;
}

/** The day a partition holds, or null for a name that is not one of ours. */
export function partitionDay(name: string): string | null {
  const m = PARTITION_NAME.exec(name);
  if (!m) return null;
  const day = `${m[1]}-${m[2]}-${m[3]}`;
  return utcDay(new Date(`${day}T00:00:00Z`)) === day ? day : null;
}

function nextDay(day: string): string {
  return utcDay(new Date(Date.parse(`${day}T00:00:00Z`) + DAY_MS));
}

// ---- cursors ----

export function encodeCursor(p: Position): string {
  return Buffer.from(`${p.occurredAt}|${p.eventId}`, 'utf8').toString('base64url');
}

/** A cursor this API handed out, or a 400: anything else is refused, not guessed at. */
export function decodeCursor(cursor: string): Position {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const m = POSITION.exec(text);
  if (!m || Buffer.from(text, 'utf8').toString('base64url') !== cursor || !isUuid(m[2]) || Number.isNaN(Date.parse(m[1]))) {
    throw new ValidationFailed('the cursor is invalid: pass the nextCursor of the previous page unchanged, or start again without one', [
      { field: 'query/cursor', message: 'is not a cursor handed out by this API' },
    ]);
  }
  return { occurredAt: m[1], eventId: m[2] };
}

interface Row {
  event_id: string;
  occurred_at: Date;
  org_id: string | null;
  actor_type: AuditEvent['actor']['type'];
  actor_id: string | null;
  action: AuditAction;
  target_type: string;
  target_id: string | null;
  agent_id: string | null;
  outcome: AuditOutcome;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
  position: string;
}

function toEvent(r: Row): AuditEvent {
  return {
    eventId: r.event_id,
    occurredAt: r.occurred_at,
    orgId: r.org_id,
    actor: { type: r.actor_type, id: r.actor_id },
    action: r.action,
    target: { type: r.target_type, id: r.target_id },
    outcome: r.outcome,
    requestId: r.request_id,
    ip: r.ip,
    userAgent: r.user_agent,
    details: r.details,
    agentId: r.agent_id,
  };
}

export class AuditRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  /**
   * One INSERT for the whole batch. The rows travel as 14 arrays (unnest), so the statement has
   * 14 parameters whatever the batch size (PostgreSQL allows 65535) and is parsed once.
   */
  async insertMany(events: AuditEvent[], db: Queryable = this.#ds): Promise<void> {
    if (events.length === 0) return;
    const column = <T>(pick: (e: AuditEvent) => T) => events.map(pick);
    await db.query(
      `INSERT INTO audit_events
         (event_id, occurred_at, org_id, actor_type, actor_id, action, target_type, target_id, agent_id,
          outcome, request_id, ip, user_agent, details)
       SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                            $8::text[], $9::uuid[], $10::text[], $11::text[], $12::text[], $13::text[], $14::jsonb[])`,
      [
        column((e) => e.eventId),
        column((e) => e.occurredAt.toISOString()),
        column((e) => e.orgId),
        column((e) => e.actor.type),
        column((e) => e.actor.id),
        column((e) => e.action),
        column((e) => e.target.type),
        column((e) => e.target.id),
        column((e) => e.agentId),
        column((e) => e.outcome),
        column((e) => e.requestId),
        column((e) => e.ip),
        column((e) => e.userAgent),
        column((e) => JSON.stringify(e.details)),
      ],
    );
  }

  /** The batch and what `also` stores with it, in one transaction. */
  async insertManyWith(events: AuditEvent[], also: (db: Queryable) => Promise<void>): Promise<void> {
    await this.#ds.transaction(async (manager) => {
      await this.insertMany(events, manager);
      await also(manager);
    });
  }

  /** True when the error is PostgreSQL's "no partition of relation ... found for row". */
  static isMissingPartition(err: unknown): boolean {
    const e = err as { code?: string; message?: string; driverError?: { code?: string; message?: string } };
    const code = e?.driverError?.code ?? e?.code;
    const message = e?.driverError?.message ?? e?.message ?? '';
    return code === '23514' && /no partition of relation/.test(message);
  }

  /** Creates the day's partition unless it exists. Returns whether this call created it. */
  async createPartition(day: string, db: Queryable = this.#ds): Promise<boolean> {
    const name = partitionName(day);
    if (partitionDay(name) !== day) throw new Error(`not a day: ${day}`);
    const [{ exists }] = await db.query(`SELECT to_regclass($1) IS NOT NULL AS exists`, [name]);
    if (exists) return false;
    try {
      await db.query(
        `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF audit_events
         FOR VALUES FROM ('${day} 00:00:00+00') TO ('${nextDay(day)} 00:00:00+00')`,
      );
      return true;
    } catch (err) {
      // Another instance created it at the same moment.
      const code = (err as { driverError?: { code?: string }; code?: string }).driverError?.code ?? (err as { code?: string }).code;
      if (code === '42P07' || code === '23505') return false;
      throw err;
    }
  }

  /** The day partitions of audit_events, oldest first; tables not named like ours are left out. */
  async listPartitions(db: Queryable = this.#ds): Promise<{ name: string; day: string }[]> {
    const rows: { name: string }[] = await db.query(
      `SELECT c.relname AS name
         FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'audit_events' AND p.relnamespace = to_regnamespace(current_schema())`,
    );
    return rows
      .map(({ name }) => ({ name, day: partitionDay(name) }))
      .filter((p): p is { name: string; day: string } => p.day !== null)
      .sort((a, b) => a.day.localeCompare(b.day));
  }

  /** Drops one day partition (only ever a name listPartitions returned). */
  async dropPartition(name: string, db: Queryable = this.#ds): Promise<void> {
    if (partitionDay(name) === null) throw new Error(`not an audit partition: ${name}`);
    await db.query(`DROP TABLE IF EXISTS ${name}`);
  }

  async findInOrg(orgId: string, eventId: string, options: AuditScopeOptions = {}): Promise<AuditEvent | null> {
    if (!isUuid(eventId)) return null;
    const params: unknown[] = [orgId, eventId.toLowerCase()];
    // The id's own time narrows the search to its day's partition (with a day to spare either
    // side); an id of another kind is looked up in every partition.
    const at = eventIdTime(eventId);
    const near = at === undefined ? '' : ` AND occurred_at >= $3 AND occurred_at < $4`;
    if (at !== undefined) params.push(new Date(at - DAY_MS).toISOString(), new Date(at + DAY_MS).toISOString());
    const rows: Row[] = await this.#ds.query(
      `SELECT ${COLUMNS} FROM audit_events
        WHERE event_id = $2${near} AND (org_id = $1 ${options.includeUnowned ? 'OR org_id IS NULL' : ''})`,
      params,
    );
    return rows.length ? toEvent(rows[0]) : null;
  }

  /** One page, newest first; `cursor` is the nextCursor of the page before. */
  async page(orgId: string, filters: AuditFilters, limit: number, cursor?: string | null, options: AuditScopeOptions = {}): Promise<AuditPageResult> {
    const after = cursor ? decodeCursor(cursor) : undefined;
    const rows = await this.#select(orgId, filters, limit + 1, after, options);
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    return {
      rows: page.map(toEvent),
      nextCursor: more ? encodeCursor({ occurredAt: last.position, eventId: last.event_id }) : null,
    };
  }

  /** Every matching event, newest first, read in keyset chunks (for the NDJSON export). */
  async *stream(orgId: string, filters: AuditFilters, options: AuditScopeOptions & { chunkSize?: number } = {}): AsyncGenerator<AuditEvent> {
    const chunkSize = options.chunkSize ?? 1000;
    let after: Position | undefined;
    for (;;) {
      const rows = await this.#select(orgId, filters, chunkSize, after, options);
      for (const row of rows) yield toEvent(row);
      if (rows.length < chunkSize) return;
      const last = rows[rows.length - 1];
      after = { occurredAt: last.position, eventId: last.event_id };
    }
  }

  /**
   * Up to `limit` rows after `after`, newest first. The search widens window by window back
   * from the newest possible event (1, 7, 30 days, then the rest): a query that can skip most
   * day partitions is planned in a few milliseconds, one over all ninety in tens, and a page
   * is nearly always filled from the newest day or two. The windows are disjoint and in
   * order, so their rows simply follow one another.
   */
  async #select(orgId: string, filters: AuditFilters, limit: number, after: Position | undefined, options: AuditScopeOptions): Promise<Row[]> {
    const bounds = [after ? Date.parse(after.occurredAt) : undefined, filters.to?.getTime()].filter((t): t is number => t !== undefined);
    const anchor = bounds.length ? Math.min(...bounds) : Date.now();
    const floor = filters.from?.getTime();
    const rows: Row[] = [];
    let below: number | undefined;
    for (const days of WINDOW_DAYS) {
      const reach = anchor - days * DAY_MS;
      const last = floor === undefined ? days === Infinity : reach <= floor;
      const lo = last ? floor : reach;
      rows.push(...(await this.#selectWindow(orgId, filters, limit - rows.length, after, options, lo, below)));
      if (rows.length >= limit || last) break;
      below = lo;
    }
    return rows;
  }

  /** One window [lo, below) of #select; undefined bounds are open. */
  async #selectWindow(
    orgId: string,
    filters: AuditFilters,
    limit: number,
    after: Position | undefined,
    options: AuditScopeOptions,
    lo: number | undefined,
    below: number | undefined,
  ): Promise<Row[]> {
    const params: unknown[] = [];
    const param = (value: unknown) => `$${params.push(value)}`;
    const conditions: string[] = [];
    if (filters.agentId !== undefined) conditions.push(`agent_id = ${param(filters.agentId)}`);
    if (filters.action !== undefined) conditions.push(`action = ${param(filters.action)}`);
    if (filters.outcome !== undefined) conditions.push(`outcome = ${param(filters.outcome)}`);
    if (filters.actorId !== undefined) conditions.push(`actor_id = ${param(filters.actorId)}`);
    if (lo !== undefined) conditions.push(`occurred_at >= ${param(new Date(lo).toISOString())}`);
    if (below !== undefined) conditions.push(`occurred_at < ${param(new Date(below).toISOString())}`);
    if (filters.to !== undefined) conditions.push(`occurred_at < ${param(filters.to.toISOString())}`);
    if (after) {
      const at = param(after.occurredAt);
      // The plain bound lets the planner skip newer partitions; the row comparison is the keyset.
      conditions.push(`occurred_at <= ${at}`, `(occurred_at, event_id) < (${at}::timestamptz, ${param(after.eventId)}::uuid)`);
    }
    const limitParam = param(limit);
    const where = conditions.map((c) => ` AND ${c}`).join('');
    const ownedBy = `org_id = ${param(orgId)}`;
    if (!options.includeUnowned) {
      return this.#ds.query(`SELECT ${COLUMNS} FROM audit_events WHERE ${ownedBy}${where} ${NEWEST_FIRST} LIMIT ${limitParam}`, params);
    }
    // Two index range scans merged, rather than one OR that no index serves in order.
    return this.#ds.query(
      `SELECT * FROM (
         (SELECT ${COLUMNS} FROM audit_events WHERE ${ownedBy}${where} ${NEWEST_FIRST} LIMIT ${limitParam})
         UNION ALL
         (SELECT ${COLUMNS} FROM audit_events WHERE org_id IS NULL${where} ${NEWEST_FIRST} LIMIT ${limitParam})
       ) e ${NEWEST_FIRST} LIMIT ${limitParam}`,
      params,
    );
  }
}
