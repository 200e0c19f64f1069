import { DAY_MS } from '../lib/time.ts';
import type { Actor } from '../http/actor.ts';
import { NotFound, ValidationFailed } from '../http/errors.ts';
import type { AuditEvent, AuditOutcome } from './audit-event.ts';
import type { AuditRepository, AuditFilters, AuditPageResult } from './audit.repository.ts';
import { auditVisibility } from '../policies/visibility.ts';

// Reading the audit log: an org sees its own events only. The operators of the service (the
// root org) also see the events that belong to no org: the scheduler's key rotations and
// retention runs, and /token calls by clients that name no agent.

export const AUDIT_LIMIT_DEFAULT = 50;
export const AUDIT_LIMIT_MAX = 200;

/** The validated query of GET /api/v1/audit (and of the export, without limit and cursor). */
export interface AuditQuery {
  agentId?: string;
  action?: string;
  outcome?: AuditOutcome;
  actorId?: string;
  /** ISO 8601, inclusive. */
  from?: string;
  /** ISO 8601, exclusive. */
  to?: string;
  limit?: number;
  cursor?: string;
}

export type AuditReader = Pick<Actor, 'orgId' | 'isRoot'>;

export interface AuditServiceOptions {
  retentionDays: number;
  now?: () => Date;
}

export class AuditService {
  readonly #repo: AuditRepository;
  readonly #retentionDays: number;
  readonly #now: () => Date;

  constructor(repo: AuditRepository, options: AuditServiceOptions) {
    this.#repo = repo;
    this.#retentionDays = options.retentionDays;
    this.#now = options.now ?? (() => new Date());
  }

  /** The oldest instant still kept: events before it are dropped or about to be. */
  retentionStart(): Date {
    return new Date(this.#now().getTime() - this.#retentionDays * DAY_MS);
  }

  async page(reader: AuditReader, query: AuditQuery): Promise<AuditPageResult> {
    const limit = query.limit ?? AUDIT_LIMIT_DEFAULT;
    if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_LIMIT_MAX) {
      throw new ValidationFailed(`limit must be a whole number from 1 to ${AUDIT_LIMIT_MAX}`, [
        { field: 'query/limit', message: `must be from 1 to ${AUDIT_LIMIT_MAX}` },
      ]);
    }
    const { orgId, includeUnowned } = auditVisibility(reader);
    return this.#repo.page(orgId, this.#filters(query), limit, query.cursor, { includeUnowned });
  }

  async get(reader: AuditReader, eventId: string): Promise<AuditEvent> {
    const { orgId, includeUnowned } = auditVisibility(reader);
    const event = await this.#repo.findInOrg(orgId, eventId, { includeUnowned });
    if (!event) throw new NotFound(`audit event ${eventId.slice(0, 64)} not found`);
    return event;
  }

  /** Every matching event, newest first, for the NDJSON export. */
  export(reader: AuditReader, query: AuditQuery): AsyncGenerator<AuditEvent> {
    const { orgId, includeUnowned } = auditVisibility(reader);
    return this.#repo.stream(orgId, this.#filters(query), { includeUnowned });
  }

  #filters(query: AuditQuery): AuditFilters {
    const keptFrom = this.retentionStart();
    const from = query.from === undefined ? undefined : new Date(query.from);
    const to = query.to === undefined ? undefined : new Date(query.to);
    if (from && Number.isNaN(from.getTime()))
      throw new ValidationFailed('from is not a date-time', [{ field: 'query/from', message: 'must be an ISO 8601 date-time' }]);
    if (to && Number.isNaN(to.getTime()))
      throw new ValidationFailed('to is not a date-time', [{ field: 'query/to', message: 'must be an ISO 8601 date-time' }]);
    if (from && from < keptFrom) {
      throw new ValidationFailed(
        `from is before the retention window: audit events are kept for ${this.#retentionDays} days, so the earliest from is ${keptFrom.toISOString()}`,
        [{ field: 'query/from', message: `must not be earlier than ${keptFrom.toISOString()} (${this.#retentionDays} days ago)` }],
      );
    }
    if (from && to && to < from) {
      throw new ValidationFailed('to is earlier than from', [{ field: 'query/to', message: 'must not be earlier than from' }]);
    }
    return {
      agentId: query.agentId?.toLowerCase(),
      action: query.action,
      outcome: query.outcome,
      actorId: query.actorId,
      // Events past the window are not shown, even in the hours before their day is dropped.
      from: from ?? keptFrom,
      to,
    };
  }
}
