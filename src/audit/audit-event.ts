import { randomUUID } from 'node:crypto';

// What an audit event holds. Events answer "which agent did what, when, and who allowed it";
// each is written once and never changed (retention drops whole days, see retention.ts).

/** The security events the service records (DESIGN.md's list, plus the audit log's own upkeep). */
export const AUDIT_ACTIONS = [
  'org.created',
  'org.updated',
  'agent.created',
  'agent.updated',
  'agent.suspended',
  'agent.reactivated',
  'agent.decommissioned',
  'credential.created',
  'credential.rotated',
  'credential.revoked',
  'credential.expiring_soon',
  'credential.expired',
  'token.issued',
  'token.denied',
  'token.introspected',
  'token.revoked',
  'key.created',
  'key.rotated',
  'key.revoked',
  'key.deleted',
  'admin.denied',
  'auth.throttled',
  'webhook.created',
  'webhook.updated',
  'webhook.deleted',
  'webhook.disabled',
  'audit.retention_purged',
  'audit.partitions_created',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_ACTOR_TYPES = ['agent', 'client', 'scheduler', 'system', 'anonymous'] as const;
export const AUDIT_OUTCOMES = ['success', 'failure'] as const;

export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/**
 * Who acted: `agent` = an agent using the management API (id = agent id); `client` = an OAuth
 * client at /token, /token/introspect or /token/revoke (id = the client id it presented, which
 * may name no agent); `scheduler` = a timer of the service (id names the job); `system` = the
 * service itself (bootstrap); `anonymous` = nobody identified.
 */
export interface AuditActor {
  type: (typeof AUDIT_ACTOR_TYPES)[number];
  id: string | null;
}

/** What was acted on: `agent`, `credential`, `token` (id = jti), `key` (id = kid), `org`, `audit_partition`, ... */
export interface AuditTarget {
  type: string;
  id: string | null;
}

export interface AuditEventInput {
  /** The tenant the event belongs to; null when it belongs to none (an unknown client, a system job). */
  orgId: string | null;
  actor: AuditActor;
  action: AuditAction;
  target: AuditTarget;
  outcome: AuditOutcome;
  /** The request's X-Request-Id; null for events no request caused. */
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
  /** Action-specific facts (scope, aud, kid, reason, ...). Scrubbed of secrets before it is stored. */
  details: Record<string, unknown>;
  /**
   * The agent the event is about, for the `agentId` filter, when neither the target nor the
   * actor is that agent (a credential's agent, the agent of an introspected token). Default: the
   * target if it is an agent, else the actor if it is an agent or a client.
   */
  agentId?: string | null;
}

/** An event as stored. */
export interface AuditEvent {
  eventId: string;
  occurredAt: Date;
  orgId: string | null;
  actor: AuditActor;
  action: AuditAction;
  target: AuditTarget;
  outcome: AuditOutcome;
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
  /** The agent the event is about (see AuditEventInput.agentId); not shown by the API. */
  agentId: string | null;
}

/**
 * A new event id: a UUIDv7 (RFC 9562 §5.7) carrying occurredAt's millisecond, so that an id
 * alone tells which day partition holds the event.
 */
export function newEventId(occurredAt: Date): string {
  // The random bits come from randomUUID (a v4: 122 random bits, drawn from a pooled buffer):
  // its rand_a (12 bits after the version digit) and its variant and rand_b (the last 64 bits).
  const random = randomUUID();
  const ms = occurredAt.getTime().toString(16).padStart(12, '0');
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${random.slice(15, 18)}-${random.slice(19)}`;
}

/** The millisecond a UUIDv7 event id carries; undefined for an id of another version. */
export function eventIdTime(eventId: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(eventId)) return undefined;
  return parseInt(eventId.slice(0, 8) + eventId.slice(9, 13), 16);
}
