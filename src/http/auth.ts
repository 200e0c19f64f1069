import type { Context, Next } from 'koa';
import type { AccessTokenVerifier } from '../oauth/verifier.ts';
import { Forbidden, Unauthorized } from './errors.ts';
import type { Actor } from './actor.ts';

/** Bearer authentication for the management API: sets ctx.state.actor. */
export function authenticate(verifier: AccessTokenVerifier, audience: string, rootOrgId: () => string) {
  return async function authenticateBearer(ctx: Context, next: Next) {
    const header = ctx.get('authorization');
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
    if (!match) {
      throw new Unauthorized(
        header ? 'the Authorization header must be "Bearer <access token>"' : 'a bearer access token is required',
        header ? 'invalid_request' : 'invalid_token',
      );
    }
    const verified = await verifier.verify(match[1], audience);
    if (!verified) throw new Unauthorized('the access token is invalid, expired, revoked or not meant for this API');
    const { claims } = verified;
    const actor: Actor = {
      agentId: claims.sub,
      orgId: claims.org_id,
      isRoot: claims.org_id === rootOrgId(),
      // A scope taken from the agent since the token was issued no longer counts.
      scopes: new Set(verified.scopes),
      jti: claims.jti,
    };
    ctx.state.actor = actor;
    return next();
  };
}

/** The route needs this scope; operator scopes also need an agent of the root org. */
export function requireScope(scope: string, { operator = false } = {}) {
  return async function checkScope(ctx: Context, next: Next) {
    const actor = ctx.state.actor as Actor;
    if (!actor.scopes.has(scope)) throw new Forbidden(`this operation needs the scope ${scope}`, scope);
    if (operator && !actor.isRoot) throw new Forbidden('this operation is for operators of the service only');
    return next();
  };
}
