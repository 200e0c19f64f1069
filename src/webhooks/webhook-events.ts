import { AUDIT_ACTIONS } from '../audit/audit-event.ts';
import type { AuditEvent } from '../audit/audit-event.ts';

// Which events a webhook may subscribe to (design/events.md): every audit action of an org
// except the per-token high-volume ones, plus webhook.test. credential.expiring_soon,
// credential.expired and auth.throttled are audit actions too, so they reach webhooks the same way.

/** Never sent: one per token issued or checked would drown receivers and cost /token a write. */
export const NOT_WEBHOOK_EVENTS: ReadonlySet<string> = new Set(['token.issued', 'token.introspected', 'token.exchanged']);

/** The service's own upkeep, which belongs to no org and so to no org's webhook. */
const SERVICE_ACTIONS = new Set(['audit.retention_purged', 'audit.partitions_created']);

export const WEBHOOK_TEST_EVENT = 'webhook.test';

export const WEBHOOK_EVENT_TYPES: readonly string[] = [
  ...AUDIT_ACTIONS.filter((action) => !NOT_WEBHOOK_EVENTS.has(action) && !SERVICE_ACTIONS.has(action)),
  WEBHOOK_TEST_EVENT,
];
const TYPES = new Set(WEBHOOK_EVENT_TYPES);

/** A pattern is an exact type or `prefix.*`; the prefix must name at least one type. */
export function unknownPatterns(patterns: string[]): string[] {
  return patterns.filter((p) => {
    if (TYPES.has(p)) return false;
    if (!p.endsWith('.*')) return true;
    const prefix = p.slice(0, -1);
    return !WEBHOOK_EVENT_TYPES.some((type) => type.startsWith(prefix));
  });
}

export function matchesPattern(type: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}

/** Whether an audit event may cause deliveries at all: it belongs to an org and is not per-token. */
export function isWebhookEvent(event: Pick<AuditEvent, 'orgId' | 'action'>): boolean {
  return event.orgId !== null && !NOT_WEBHOOK_EVENTS.has(event.action) && !SERVICE_ACTIONS.has(event.action);
}
