import type { DataSource } from 'typeorm';
import type { Queryable } from '../audit/audit.repository.ts';
import { ValidationFailed } from '../http/errors.ts';
import { isUuid } from '../lib/ids.ts';
import type { Delivery, DeliveryStatus, Webhook } from './webhook.entity.ts';

// All SQL of webhooks and their deliveries. Every read and write of tenant data takes the org
// id and puts it in the WHERE; only the senders' claim (which works for every org) does not.
// Nothing here is cached by the instances, so nothing is announced.

const WEBHOOK_COLUMNS = `id, org_id, url, events, description, enabled, secret_enc, previous_secret_enc, previous_expires_at,
  encryption_key_id, failing_since, disabled_reason, created_at, updated_at`;
const DELIVERY_COLUMNS = `id, webhook_id, org_id, event_id, type, occurred_at, data, status, attempts, next_attempt_at,
  last_status_code, last_error, delivered_at, created_at`;

interface WebhookRow {
  id: string;
  org_id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  secret_enc: string;
  previous_secret_enc: string | null;
  previous_expires_at: Date | null;
  encryption_key_id: string;
  failing_since: Date | null;
  disabled_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

interface DeliveryRow {
  id: string;
  webhook_id: string;
  org_id: string;
  event_id: string;
  type: string;
  occurred_at: Date;
  data: Record<string, unknown>;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
}

function webhookFromRow(r: WebhookRow): Webhook {
  return {
    id: r.id,
    orgId: r.org_id,
    url: r.url,
    events: r.events,
    description: r.description,
    enabled: r.enabled,
    secretEnc: r.secret_enc,
    previousSecretEnc: r.previous_secret_enc,
    previousExpiresAt: r.previous_expires_at,
    encryptionKeyId: r.encryption_key_id,
    failingSince: r.failing_since,
    disabledReason: r.disabled_reason,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function deliveryFromRow(r: DeliveryRow): Delivery {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    orgId: r.org_id,
    eventId: r.event_id,
    type: r.type,
    occurredAt: r.occurred_at,
    data: r.data,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
    createdAt: r.created_at,
  };
}

/** What an audit event contributes to the outbox: the Standard Webhooks type and data. */
export interface OutboxEvent {
  eventId: string;
  orgId: string;
  type: string;
  occurredAt: Date;
  data: Record<string, unknown>;
}

export type WebhookChanges = Partial<
  Pick<Webhook, 'url' | 'events' | 'description' | 'enabled' | 'secretEnc' | 'previousSecretEnc' | 'previousExpiresAt' | 'failingSince' | 'disabledReason'>
>;

const CHANGE_COLUMNS: Record<keyof WebhookChanges, string> = {
  url: 'url',
  events: 'events',
  description: 'description',
  enabled: 'enabled',
  secretEnc: 'secret_enc',
  previousSecretEnc: 'previous_secret_enc',
  previousExpiresAt: 'previous_expires_at',
  failingSince: 'failing_since',
  disabledReason: 'disabled_reason',
};

// ---- delivery cursors: (created_at DESC, id DESC) ----

const CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\|([0-9a-f-]{36})$/;

function encodeCursor(d: Delivery): string {
  return Buffer.from(`${d.createdAt.toISOString()}|${d.id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const m = CURSOR.exec(text);
  if (!m || Buffer.from(text, 'utf8').toString('base64url') !== cursor || !isUuid(m[2]) || Number.isNaN(Date.parse(m[1]))) {
    throw new ValidationFailed('the cursor is invalid: pass the nextCursor of the previous page unchanged, or start again without one', [
      { field: 'query/cursor', message: 'is not a cursor handed out by this API' },
    ]);
  }
  return { createdAt: m[1], id: m[2] };
}

export class WebhooksRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  async insert(w: Webhook): Promise<void> {
    await this.#ds.query(`INSERT INTO webhooks (${WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, [
      w.id,
      w.orgId,
      w.url,
      w.events,
      w.description,
      w.enabled,
      w.secretEnc,
      w.previousSecretEnc,
      w.previousExpiresAt,
      w.encryptionKeyId,
      w.failingSince,
      w.disabledReason,
      w.createdAt,
      w.updatedAt,
    ]);
  }

  async countInOrg(orgId: string): Promise<number> {
    const [{ n }] = await this.#ds.query(`SELECT count(*)::int AS n FROM webhooks WHERE org_id = $1`, [orgId]);
    return n;
  }

  async listInOrg(orgId: string): Promise<Webhook[]> {
    const rows: WebhookRow[] = await this.#ds.query(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 ORDER BY created_at, id`, [orgId]);
    return rows.map(webhookFromRow);
  }

  async findInOrg(orgId: string, id: string): Promise<Webhook | null> {
    const rows: WebhookRow[] = await this.#ds.query(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 AND id = $2`, [orgId, id]);
    return rows.length ? webhookFromRow(rows[0]) : null;
  }

  /** Applies the changes and returns the webhook as it now is, or null when the org has no such webhook. */
  async update(orgId: string, id: string, changes: WebhookChanges, at: Date): Promise<Webhook | null> {
    const params: unknown[] = [orgId, id, at];
    const sets = ['updated_at = $3'];
    for (const [key, value] of Object.entries(changes) as [keyof WebhookChanges, unknown][]) {
      if (value === undefined) continue;
      params.push(value);
      sets.push(`${CHANGE_COLUMNS[key]} = $${params.length}`);
    }
    const [rows]: [WebhookRow[], number] = await this.#ds.query(
      `UPDATE webhooks SET ${sets.join(', ')} WHERE org_id = $1 AND id = $2 RETURNING ${WEBHOOK_COLUMNS}`,
      params,
    );
    return rows.length ? webhookFromRow(rows[0]) : null;
  }

  async delete(orgId: string, id: string): Promise<boolean> {
    const [, count]: [unknown, number] = await this.#ds.query(`DELETE FROM webhooks WHERE org_id = $1 AND id = $2`, [orgId, id]);
    return count > 0;
  }

  /** One delivery to one webhook (webhook.test), due now. */
  async insertDelivery(d: Delivery): Promise<void> {
    await this.#ds.query(`INSERT INTO webhook_deliveries (${DELIVERY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, [
      d.id,
      d.webhookId,
      d.orgId,
      d.eventId,
      d.type,
      d.occurredAt,
      JSON.stringify(d.data),
      d.status,
      d.attempts,
      d.nextAttemptAt,
      d.lastStatusCode,
      d.lastError,
      d.deliveredAt,
      d.createdAt,
    ]);
  }

  /**
   * The outbox: one pending delivery per event and enabled webhook of its org whose patterns
   * match its type (exact, or `prefix.*`), inside the transaction that stores the events. The
   * events travel as five arrays, so the statement is the same whatever the batch size.
   */
  async deriveDeliveries(events: OutboxEvent[], db: Queryable): Promise<void> {
    if (events.length === 0) return;
    await db.query(
      `INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_id, type, occurred_at, data, status, attempts, next_attempt_at, created_at)
       SELECT gen_random_uuid(), w.id, w.org_id, e.event_id, e.type, e.occurred_at, e.data, 'pending', 0, e.occurred_at, e.occurred_at
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::jsonb[]) AS e (event_id, org_id, type, occurred_at, data)
         JOIN webhooks w ON w.org_id = e.org_id AND w.enabled
        WHERE e.type = ANY (w.events)
           OR EXISTS (SELECT 1 FROM unnest(w.events) AS p (pattern) WHERE p.pattern LIKE '%.*' AND starts_with(e.type, left(p.pattern, -1)))
       ON CONFLICT (webhook_id, event_id) DO NOTHING`,
      [
        events.map((e) => e.eventId),
        events.map((e) => e.orgId),
        events.map((e) => e.type),
        events.map((e) => e.occurredAt.toISOString()),
        events.map((e) => JSON.stringify(e.data)),
      ],
    );
  }

  /** A page of a webhook's deliveries, newest first. */
  async deliveriesPage(
    orgId: string,
    webhookId: string,
    status: DeliveryStatus | undefined,
    limit: number,
    cursor: string | undefined,
  ): Promise<{ rows: Delivery[]; nextCursor: string | null }> {
    const params: unknown[] = [orgId, webhookId];
    const conditions = ['org_id = $1', 'webhook_id = $2'];
    if (status) conditions.push(`status = $${params.push(status)}`);
    if (cursor) {
      const after = decodeCursor(cursor);
      conditions.push(`(created_at, id) < ($${params.push(after.createdAt)}::timestamptz, $${params.push(after.id)}::uuid)`);
    }
    const rows: DeliveryRow[] = await this.#ds.query(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE ${conditions.join(' AND ')}
        ORDER BY created_at DESC, id DESC LIMIT $${params.push(limit + 1)}`,
      params,
    );
    const page = rows.slice(0, limit).map(deliveryFromRow);
    return { rows: page, nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]) : null };
  }

  /**
   * Claims up to `limit` due deliveries of enabled webhooks for one attempt each: SKIP LOCKED
   * lets every instance claim at once without two taking the same row, and the claim moves
   * next_attempt_at to `leaseUntil`, so that a sender that dies mid-attempt leaves the row to be
   * tried again then (at least once) rather than never.
   */
  async claimDue(now: Date, leaseUntil: Date, limit: number): Promise<{ delivery: Delivery; webhook: Webhook }[]> {
    const [rows]: [DeliveryRow[], number] = await this.#ds.query(
      `WITH due AS (
         SELECT d.id FROM webhook_deliveries d
          WHERE d.status = 'pending' AND d.next_attempt_at <= $1
            AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.enabled)
          ORDER BY d.next_attempt_at
          LIMIT $3
          FOR UPDATE OF d SKIP LOCKED)
       UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $2
         FROM due WHERE d.id = due.id
       RETURNING ${DELIVERY_COLUMNS.split(',')
         .map((c) => `d.${c.trim()}`)
         .join(', ')}`,
      [now, leaseUntil, limit],
    );
    if (rows.length === 0) return [];
    const hooks: WebhookRow[] = await this.#ds.query(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE id = ANY ($1::uuid[])`, [
      [...new Set(rows.map((r) => r.webhook_id))],
    ]);
    const byId = new Map(hooks.map((h) => [h.id, webhookFromRow(h)]));
    return rows.filter((r) => byId.has(r.webhook_id)).map((r) => ({ delivery: deliveryFromRow(r), webhook: byId.get(r.webhook_id)! }));
  }

  async recordDelivered(delivery: Delivery, statusCode: number, at: Date): Promise<void> {
    await this.#ds.query(
      `UPDATE webhook_deliveries SET status = 'delivered', delivered_at = $3, last_status_code = $4, last_error = NULL, next_attempt_at = NULL
        WHERE org_id = $1 AND id = $2`,
      [delivery.orgId, delivery.id, at, statusCode],
    );
    await this.#ds.query(`UPDATE webhooks SET failing_since = NULL WHERE org_id = $1 AND id = $2 AND failing_since IS NOT NULL`, [
      delivery.orgId,
      delivery.webhookId,
    ]);
  }

  /**
   * A failed attempt: retried at `retryAt`, or failed for good when there is none. Returns when
   * the webhook's current run of failures began.
   */
  async recordFailure(delivery: Delivery, statusCode: number | null, error: string, retryAt: Date | null, at: Date): Promise<Date> {
    await this.#ds.query(
      `UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, last_status_code = $5, last_error = $6
        WHERE org_id = $1 AND id = $2`,
      [delivery.orgId, delivery.id, retryAt ? 'pending' : 'failed', retryAt, statusCode, error.slice(0, 500)],
    );
    const [rows]: [{ failing_since: Date }[], number] = await this.#ds.query(
      `UPDATE webhooks SET failing_since = COALESCE(failing_since, $3) WHERE org_id = $1 AND id = $2 RETURNING failing_since`,
      [delivery.orgId, delivery.webhookId, at],
    );
    return rows[0]?.failing_since ?? at;
  }

  /** Disables a webhook that has failed too long; false when it was disabled already (another instance did it). */
  async disableFailing(orgId: string, id: string, reason: string, at: Date): Promise<boolean> {
    const [, count]: [unknown, number] = await this.#ds.query(
      `UPDATE webhooks SET enabled = false, disabled_reason = $3, updated_at = $4 WHERE org_id = $1 AND id = $2 AND enabled`,
      [orgId, id, reason, at],
    );
    return count > 0;
  }
}
