import type { Context } from 'koa';
import type { AuditAction, AuditActor, AuditEventInput, AuditOutcome, AuditTarget } from './audit-event.ts';
import type { Actor } from '../http/actor.ts';

// The one place audit events are built, one builder per kind of actor (audit-event.ts,
// AuditActor): handlers and jobs say what happened; who acted and from where is filled in here.

type Details = Record<string, unknown>;

/** Where a request came from: its X-Request-Id, the client address, the user agent. */
function requestFacts(ctx: Context): Pick<AuditEventInput, 'requestId' | 'ip' | 'userAgent'> {
  return {
    // oidc-provider's own Koa context has no state of ours; the header set before it is the same id.
    requestId: (ctx.state.requestId as string | undefined) ?? (ctx.response.get('x-request-id') || null),
    ip: ctx.ip || null,
    userAgent: ctx.get('user-agent').slice(0, 512) || null,
  };
}

type EventOptions = { outcome?: AuditOutcome; agentId?: string | null };

/** An event a request caused: who acted in which org, plus where the request came from. */
function requestEvent(
  ctx: Context,
  orgId: string | null,
  actor: AuditActor,
  action: AuditAction,
  target: AuditTarget,
  details: Details,
  options: EventOptions,
): AuditEventInput {
  return { orgId, actor, action, target, outcome: options.outcome ?? 'success', ...requestFacts(ctx), details, agentId: options.agentId };
}

/** An agent using the management API, in its org: the agent whose bearer token opened it. */
export function managementEvent(ctx: Context, action: AuditAction, target: AuditTarget, details: Details = {}, options: EventOptions = {}): AuditEventInput {
  const actor = ctx.state.actor as Actor;
  return requestEvent(ctx, actor.orgId, { type: 'agent', id: actor.agentId }, action, target, details, options);
}

/**
 * admin.denied: a management request refused for its token (401) or a missing scope (403).
 * The actor is the agent when the token named one, else nobody.
 */
export function adminDeniedEvent(ctx: Context, status: number, reason: string): AuditEventInput {
  const actor = ctx.state.actor as Actor | undefined;
  return requestEvent(
    ctx,
    actor?.orgId ?? null,
    actor ? { type: 'agent', id: actor.agentId } : { type: 'anonymous', id: null },
    'admin.denied',
    { type: 'route', id: `${ctx.method} ${ctx.path}`.slice(0, 300) },
    { status, reason },
    { outcome: 'failure' },
  );
}

/**
 * An OAuth client at /token, /token/introspect or /token/revoke. `client.id` is the client id
 * it presented, which may name no agent (then `orgId` is null and no agent is filed).
 */
export function clientEvent(
  ctx: Context,
  client: { id: string | null; orgId: string | null },
  action: AuditAction,
  target: AuditTarget,
  details: Details,
  options: EventOptions = {},
): AuditEventInput {
  return requestEvent(ctx, client.orgId, { type: 'client', id: client.id }, action, target, details, options);
}

/** A timer of the service (key rotation, audit retention); no request caused it. */
export function schedulerEvent(job: string, action: AuditAction, target: AuditTarget, details: Details, orgId: string | null = null): AuditEventInput {
  return {
    orgId,
    actor: { type: 'scheduler', id: job },
    action,
    target,
    outcome: 'success',
    requestId: null,
    ip: null,
    userAgent: null,
    details,
  };
}
