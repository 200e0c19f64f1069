// What an audit event holds. Events answer "which agent did what, when, and who allowed it";
// each is written once and never changed (retention drops whole days, see retention.ts).

/** The security events the service records (DESIGN.md's list, plus the audit log's own upkeep). */
export const AUDIT_ACTIONS = [
  'org.created',
  'agent.created',
  'agent.updated',
  'agent.suspended',
  'agent.reactivated',
  'agent.decommissioned',
  'credential.created',
  'credential.rotated',
  'credential.revoked',
  'token.issued',
  'token.denied',
  'token.introspected',
  'token.revoked',
  'key.created',
  'key.rotated',
  'key.revoked',
  'key.deleted',
  'admin.denied',
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
