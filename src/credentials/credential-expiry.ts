import type { DataSource } from 'typeorm';
import type { Logger } from '../lib/logger.ts';
import { DAY_MS } from '../lib/time.ts';
import type { AuditWriter } from '../audit/audit.writer.ts';
import type { AuditEvent, AuditEventInput } from '../audit/audit-event.ts';
import { schedulerEvent } from '../audit/events.ts';

// credential.expiring_soon (WEBHOOK_EXPIRY_WARNING_DAYS before expiresAt) and
// credential.expired, once per credential and expiry: audit events, and so webhook deliveries
// (design/events.md). Every instance runs the job; a transaction-scoped advisory lock lets one
// at a time scan, and the notice rows (primary key: credential, kind, expiry) are the claim, so
// that a credential is announced once even should two runs overlap. The claim, the events and
// their deliveries commit together: a crash announces nothing or everything.

/** pg_try_advisory_xact_lock key of the expiry job ("aidp" "cexp"). */
export const CREDENTIAL_EXPIRY_LOCK = 0x61696470_63657870n;
/** Per run at most; the rest go on the next. */
const BATCH = 500;

export interface CredentialExpiryOptions {
  warningDays: number;
  /** The wall clock in ms (the container's; tests drive it). */
  clock: () => number;
  /** Between runs (default 1 min). */
  everyMs?: number;
}

interface Claimed {
  id: string;
  agent_id: string;
  org_id: string;
  kind: 'expiring_soon' | 'expired';
  expires_at: Date;
}

export class CredentialExpiry {
  readonly #ds: DataSource;
  readonly #writer: Pick<AuditWriter, 'storeWithin' | 'committed'>;
  readonly #logger: Logger;
  readonly #options: Required<CredentialExpiryOptions>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(dataSource: DataSource, writer: Pick<AuditWriter, 'storeWithin' | 'committed'>, logger: Logger, options: CredentialExpiryOptions) {
    this.#ds = dataSource;
    this.#writer = writer;
    this.#logger = logger;
    this.#options = { everyMs: 60_000, ...options };
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.run().catch((err) => this.#logger.error('credential expiry notices failed; the next run tries again', { err }));
    }, this.#options.everyMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.catch(() => {});
  }

  /** Announces what has come due since the last run; returns the events written. */
  run(): Promise<AuditEvent[]> {
    const running = (this.#running ?? Promise.resolve()).catch(() => {}).then(() => this.#run());
    this.#running = running;
    return running;
  }

  async #run(): Promise<AuditEvent[]> {
    const now = this.#options.clock();
    const warnUntil = new Date(now + this.#options.warningDays * DAY_MS);
    // An expiry older than the warning window is not news (a credential that expired long before this job first ran).
    const expiredSince = new Date(now - this.#options.warningDays * DAY_MS);
    const events = await this.#ds.transaction(async (m) => {
      const [{ ok }] = await m.query(`SELECT pg_try_advisory_xact_lock($1::bigint) AS ok`, [CREDENTIAL_EXPIRY_LOCK.toString()]);
      if (!ok) return [];
      const claimed: Claimed[] = await m.query(
        `WITH due AS (
           SELECT c.id, CASE WHEN c.expires_at <= $1 THEN 'expired' ELSE 'expiring_soon' END AS kind, c.expires_at
             FROM credentials c
            WHERE c.status = 'active' AND c.expires_at IS NOT NULL AND c.expires_at <= $2 AND c.expires_at > $3),
         claimed AS (
           INSERT INTO credential_expiry_notices (credential_id, kind, expires_at, noticed_at)
           SELECT id, kind, expires_at, $1 FROM due
            WHERE NOT EXISTS (SELECT 1 FROM credential_expiry_notices n WHERE n.credential_id = due.id AND n.kind = due.kind AND n.expires_at = due.expires_at)
            LIMIT ${BATCH}
           ON CONFLICT DO NOTHING
           RETURNING credential_id, kind, expires_at)
         SELECT c.id, c.agent_id, c.org_id, claimed.kind, claimed.expires_at
           FROM claimed JOIN credentials c ON c.id = claimed.credential_id`,
        [new Date(now), warnUntil, expiredSince],
      );
      if (claimed.length === 0) return [];
      const inputs: AuditEventInput[] = claimed.map((c) => ({
        ...schedulerEvent(
          'credential-expiry',
          c.kind === 'expired' ? 'credential.expired' : 'credential.expiring_soon',
          { type: 'credential', id: c.id },
          { agentId: c.agent_id, expiresAt: c.expires_at.toISOString() },
          c.org_id,
        ),
        agentId: c.agent_id,
      }));
      return this.#writer.storeWithin(m, inputs);
    });
    if (events.length) {
      this.#writer.committed(events);
      this.#logger.info('credential expiry announced', { events: events.length });
    }
    return events;
  }
}
