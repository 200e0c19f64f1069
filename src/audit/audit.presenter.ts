import type { AuditEvent } from './audit-event.ts';

/** An audit event as the API shows it (agentId, an index column, stays inside). */
export function presentAuditEvent(e: AuditEvent) {
  return {
    eventId: e.eventId,
    occurredAt: e.occurredAt.toISOString(),
    orgId: e.orgId,
    actor: { type: e.actor.type, id: e.actor.id },
    action: e.action,
    target: { type: e.target.type, id: e.target.id },
    outcome: e.outcome,
    requestId: e.requestId,
    ip: e.ip,
    userAgent: e.userAgent,
    details: e.details,
  };
}
