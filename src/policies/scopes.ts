import type { Context, Next } from 'koa';
import { Forbidden } from '../http/errors.ts';
import type { Actor } from '../http/actor.ts';

// The scopes of this service's own management API. Operator scopes belong to the operators of
// the whole service: agents of the root org.

export const OPERATOR_SCOPES = ['keys:read', 'keys:write', 'orgs:read', 'orgs:write'];
/** Added with webhooks (design/events.md): org admins and operators hold them; operators made before get them at start. */
export const WEBHOOK_SCOPES = ['webhooks:read', 'webhooks:write'];
export const ORG_ADMIN_SCOPES = ['agents:read', 'agents:write', 'audit:read', ...WEBHOOK_SCOPES];
export const ALL_MANAGEMENT_SCOPES = [...ORG_ADMIN_SCOPES, ...OPERATOR_SCOPES];

/** Held by a resource server that may introspect the tokens of its org's agents. */
export const INTROSPECT_SCOPE = 'tokens:introspect';

/** A route's scope check, with what it requires readable from the route's chain (tests list them). */
export type ScopeCheck = ((ctx: Context, next: Next) => Promise<unknown>) & { scope: string; operator: boolean };

/** The route needs this scope; operator scopes also need an agent of the root org. */
export function requireScope(scope: string, { operator = false } = {}): ScopeCheck {
  const check = async function checkScope(ctx: Context, next: Next) {
    const actor = ctx.state.actor as Actor;
    if (!actor.scopes.has(scope)) throw new Forbidden(`this operation needs the scope ${scope}`, scope);
    if (operator && !actor.isRoot) throw new Forbidden('this operation is for operators of the service only');
    return next();
  };
  return Object.assign(check, { scope, operator });
}
