import type { Context, Next } from 'koa';
import { Unauthorized } from './errors.ts';
import type { Actor } from './actor.ts';

/** What the bearer check needs of the token verifier (src/oauth/verifier.ts). */
export interface BearerVerifier {
  verify(token: string, audience: string): Promise<{ claims: { sub: string; org_id: string; jti: string }; scopes: string[] } | undefined>;
}

/** Bearer authentication for the management API (RFC 6750): sets ctx.state.actor. */
export function authenticate(verifier: BearerVerifier, audience: string, rootOrgId: () => string) {
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
