import type { DataSource } from 'typeorm';
import type { JWK } from 'jose';
import { ValidationFailed } from '../http/errors.ts';
import { isUuid } from '../lib/ids.ts';
import type { Queryable } from './audit.repository.ts';
import type { Checkpoint, PresentedEvent } from './checkpoint-format.ts';

// All SQL of the checkpoints, and the reads of audit events in chain order that building and
// verifying them take. A chain is one org's (orgId) or the service's (null); every query names it.

export type Chain = string | null;

interface CheckpointRow {
  id: string;
  org_id: string | null;
  seq: number;
  from_at: Date;
  to_at: Date;
  count: number;
  root: string;
  previous: string | null;
  signature: string;
  created_at: Date;
}

const COLUMNS = 'id, org_id, seq, from_at, to_at, count, root, previous, signature, created_at';

function fromRow(r: CheckpointRow): Checkpoint {
  return {
    checkpointId: r.id,
    orgId: r.org_id,
    seq: r.seq,
    from: r.from_at.toISOString(),
    to: r.to_at.toISOString(),
    count: r.count,
    root: r.root,
    previous: r.previous,
    signature: r.signature,
    createdAt: r.created_at.toISOString(),
  };
}

/** `org_id = $n`, or `org_id IS NULL` for the service's chain. */
function chainIs(chain: Chain, params: unknown[], column = 'org_id'): string {
  if (chain === null) return `${column} IS NULL`;
  params.push(chain);
  return `${column} = $${params.length}`;
}

const CURSOR = /^(\d+)\|([0-9a-f-]{36}|service)$/;

/** How long a reader that worked `busyMs` waits so that its work is `share` of the time it takes. */
export function paceMs(busyMs: number, share: number): number {
  return share >= 1 || share <= 0 ? 0 : busyMs * (1 / share - 1);
}

export class CheckpointsRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  async last(chain: Chain, db: Queryable = this.#ds): Promise<Checkpoint | null> {
    const params: unknown[] = [];
    const rows: CheckpointRow[] = await db.query(`SELECT ${COLUMNS} FROM audit_checkpoints WHERE ${chainIs(chain, params)} ORDER BY seq DESC LIMIT 1`, params);
    return rows.length ? fromRow(rows[0]) : null;
  }

  /** How far every chain has been checkpointed: the latest `to` of any checkpoint. */
  async watermark(db: Queryable): Promise<Date | null> {
    const [{ at }] = await db.query(`SELECT max(to_at) AS at FROM audit_checkpoints`);
    return at ? new Date(at) : null;
  }

  /** The chains with events in [from, to). */
  async chainsWithEvents(from: Date | null, to: Date, db: Queryable): Promise<Chain[]> {
    const rows: { org_id: string | null }[] = await db.query(
      `SELECT DISTINCT org_id FROM audit_events WHERE occurred_at < $1${from ? ' AND occurred_at >= $2' : ''}`,
      from ? [to, from] : [to],
    );
    return rows.map((r) => r.org_id);
  }

  async firstEventAt(chain: Chain, db: Queryable): Promise<Date | null> {
    const params: unknown[] = [];
    const [{ at }] = await db.query(`SELECT min(occurred_at) AS at FROM audit_events WHERE ${chainIs(chain, params)}`, params);
    return at ? new Date(at) : null;
  }

  /**
   * The chain's events in [from, to), in chain order, read in keyset chunks. `share` paces a
   * background reader: after each chunk it waits long enough that reading and what the caller
   * did with the chunk take at most that share of the time (1: no waiting, only a turn of the
   * event loop), so that a big window does not halve the throughput of the requests around it.
   */
  async *events(chain: Chain, from: Date, to: Date, options: { db?: Queryable; chunk?: number; share?: number } = {}): AsyncGenerator<PresentedEvent> {
    const { db = this.#ds, chunk = 1000, share = 1 } = options;
    let after: { at: string; id: string } | undefined;
    for (;;) {
      const started = performance.now();
      const params: unknown[] = [from.toISOString(), to.toISOString()];
      const keyset = after ? ` AND (occurred_at, event_id) > ($${params.push(after.at)}::timestamptz, $${params.push(after.id)}::uuid)` : '';
      const rows: (PresentedEvent & { position: string })[] = await db.query(
        `SELECT event_id AS "eventId", occurred_at AS "occurredAt", org_id AS "orgId", actor_type, actor_id, action, target_type, target_id,
                outcome, request_id AS "requestId", ip, user_agent AS "userAgent", details,
                to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position
           FROM audit_events
          WHERE ${chainIs(chain, params)} AND occurred_at >= $1 AND occurred_at < $2${keyset}
          ORDER BY occurred_at, event_id LIMIT ${chunk}`,
        params,
      );
      for (const r of rows as unknown as Record<string, any>[]) {
        yield {
          eventId: r.eventId,
          occurredAt: new Date(r.occurredAt).toISOString(),
          orgId: r.orgId,
          actor: { type: r.actor_type, id: r.actor_id },
          action: r.action,
          target: { type: r.target_type, id: r.target_id },
          outcome: r.outcome,
          requestId: r.requestId,
          ip: r.ip,
          userAgent: r.userAgent,
          details: r.details,
        };
      }
      if (rows.length < chunk) return;
      // Between chunks, the event loop serves requests; a paced reader also leaves them the core for a while.
      const waitMs = paceMs(performance.now() - started, share);
      await new Promise((resolve) => (waitMs >= 1 ? setTimeout(resolve, waitMs) : setImmediate(resolve)));
      const lastRow = rows[rows.length - 1];
      after = { at: lastRow.position, id: lastRow.eventId };
    }
  }

  async insert(c: Checkpoint, db: Queryable): Promise<void> {
    await db.query(`INSERT INTO audit_checkpoints (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, [
      c.checkpointId,
      c.orgId,
      c.seq,
      c.from,
      c.to,
      c.count,
      c.root,
      c.previous,
      c.signature,
      c.createdAt,
    ]);
  }

  /** Keeps the public half of a key that signs checkpoints, for as long as the checkpoints are kept. */
  async rememberSigner(kid: string, alg: string, publicJwk: JWK, at: Date, db: Queryable): Promise<void> {
    await db.query(`INSERT INTO checkpoint_signers (kid, alg, public_jwk, first_used_at) VALUES ($1, $2, $3, $4) ON CONFLICT (kid) DO NOTHING`, [
      kid,
      alg,
      JSON.stringify(publicJwk),
      at,
    ]);
  }

  async signer(kid: string): Promise<{ kid: string; alg: string; publicJwk: JWK } | null> {
    const rows: { kid: string; alg: string; public_jwk: JWK }[] = await this.#ds.query(`SELECT kid, alg, public_jwk FROM checkpoint_signers WHERE kid = $1`, [
      kid,
    ]);
    return rows.length ? { kid: rows[0].kid, alg: rows[0].alg, publicJwk: rows[0].public_jwk } : null;
  }

  /**
   * A page of the chains' checkpoints whose window meets [from, to), oldest first, in
   * (seq, chain) order; `cursor` is the nextCursor of the page before.
   */
  async page(
    chains: Chain[],
    from: Date | undefined,
    to: Date | undefined,
    limit: number,
    cursor?: string,
  ): Promise<{ rows: Checkpoint[]; nextCursor: string | null }> {
    const params: unknown[] = [];
    const conditions = [`(${chains.map((c) => chainIs(c, params)).join(' OR ')})`];
    if (from) conditions.push(`to_at > $${params.push(from)}`);
    if (to) conditions.push(`from_at < $${params.push(to)}`);
    if (cursor) {
      const text = Buffer.from(cursor, 'base64url').toString('utf8');
      const m = CURSOR.exec(text);
      if (!m || Buffer.from(text, 'utf8').toString('base64url') !== cursor || (m[2] !== 'service' && !isUuid(m[2]))) {
        throw new ValidationFailed('the cursor is invalid: pass the nextCursor of the previous page unchanged', [
          { field: 'query/cursor', message: 'is not a cursor handed out by this API' },
        ]);
      }
      conditions.push(`(seq, COALESCE(org_id::text, 'service')) > ($${params.push(Number(m[1]))}::int, $${params.push(m[2])}::text)`);
    }
    const rows: CheckpointRow[] = await this.#ds.query(
      `SELECT ${COLUMNS} FROM audit_checkpoints WHERE ${conditions.join(' AND ')}
        ORDER BY seq, COALESCE(org_id::text, 'service') LIMIT $${params.push(limit + 1)}`,
      params,
    );
    const page = rows.slice(0, limit).map(fromRow);
    const last = page[page.length - 1];
    return {
      rows: page,
      nextCursor: rows.length > limit ? Buffer.from(`${last.seq}|${last.orgId ?? 'service'}`, 'utf8').toString('base64url') : null,
    };
  }

  /** The chain's checkpoints whose window meets [from, to), in seq order, and the one before them (to check the link). */
  async forVerify(chain: Chain, from: Date | undefined, to: Date | undefined): Promise<{ before: Checkpoint | null; checkpoints: Checkpoint[] }> {
    const params: unknown[] = [];
    const conditions = [chainIs(chain, params)];
    if (from) conditions.push(`to_at > $${params.push(from)}`);
    if (to) conditions.push(`from_at < $${params.push(to)}`);
    const rows: CheckpointRow[] = await this.#ds.query(`SELECT ${COLUMNS} FROM audit_checkpoints WHERE ${conditions.join(' AND ')} ORDER BY seq`, params);
    const checkpoints = rows.map(fromRow);
    if (!checkpoints.length || checkpoints[0].seq === 1) return { before: null, checkpoints };
    const beforeParams: unknown[] = [checkpoints[0].seq - 1];
    const before: CheckpointRow[] = await this.#ds.query(
      `SELECT ${COLUMNS} FROM audit_checkpoints WHERE seq = $1 AND ${chainIs(chain, beforeParams)}`,
      beforeParams,
    );
    return { before: before.length ? fromRow(before[0]) : null, checkpoints };
  }
}
