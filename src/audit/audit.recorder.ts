import type { Context } from 'koa';
import type { AuditAction, AuditEventInput, AuditOutcome, AuditTarget } from './audit-event.ts';
import type { Actor } from '../http/actor.ts';

// Builds events from a request: who (the agent of the bearer token, or the authenticated
// client), from where (requestId, ip, user agent), so that handlers only say what happened.

export function requestFacts(ctx: Context): Pick<AuditEventInput, 'requestId' | 'ip' | 'userAgent'> {
  return {
    // oidc-provider's own Koa context has no state of ours; the header set before it is the same id.
    requestId: (ctx.state.requestId as string | undefined) ?? (ctx.response.get('x-request-id') || null),
    ip: ctx.ip || null,
    userAgent: ctx.get('user-agent').slice(0, 512) || null,
  };
}

/** An event of the management API, acted by the agent whose token was used, in its org. */
export function managementEvent(
  ctx: Context,
  action: AuditAction,
  target: AuditTarget,
  details: Record<string, unknown> = {},
  options: { outcome?: AuditOutcome; agentId?: string | null } = {},
): AuditEventInput {
  const actor = ctx.state.actor as Actor;
  return {
    orgId: actor.orgId,
    actor: { type: 'agent', id: actor.agentId },
    action,
    target,
    outcome: options.outcome ?? 'success',
    ...requestFacts(ctx),
    details,
    agentId: options.agentId,
  };
}
