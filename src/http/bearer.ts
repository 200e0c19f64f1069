import type { Context, Next } from 'koa';
import { Unauthorized } from './errors.ts';
import type { Actor } from './actor.ts';

/** What the bearer check needs of the token verifier (src/oauth/verifier.ts). */
export interface BearerVerifier {
  verify(
    token: string,
    audience: string,
  ): Promise<{ claims: { sub: string; org_id: string; jti: string; cnf?: { jkt?: string } }; scopes: string[] } | undefined>;
}

/** Checks the DPoP proof of a request for a token bound to `jkt` (src/oauth/dpop-proof.ts): why it fails, or undefined. */
export type DpopProofCheck = (proof: string | undefined, request: { method: string; path: string }, token: string, jkt: string) => Promise<string | undefined>;

/**
 * Authentication for the management API: Bearer tokens (RFC 6750), and DPoP-bound tokens as
 * `DPoP <token>` with a proof (RFC 9449 §7). A bound token presented as Bearer is refused: the
 * binding is what makes a stolen token useless. Sets ctx.state.actor.
 */
export function authenticate(verifier: BearerVerifier, audience: string, rootOrgId: () => string, checkProof: DpopProofCheck) {
  return async function authenticateBearer(ctx: Context, next: Next) {
    const header = ctx.get('authorization');
    const match = /^(Bearer|DPoP) ([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
    if (!match) {
      throw new Unauthorized(
        header ? 'the Authorization header must be "Bearer <access token>" or "DPoP <access token>"' : 'a bearer access token is required',
        header ? 'invalid_request' : 'invalid_token',
      );
    }
    const dpop = match[1].toLowerCase() === 'dpop';
    const scheme = dpop ? 'DPoP' : 'Bearer';
    const token = match[2];
    const verified = await verifier.verify(token, audience);
    if (!verified) throw new Unauthorized('the access token is invalid, expired, revoked or not meant for this API', 'invalid_token', scheme);
    const { claims } = verified;
    const jkt = claims.cnf?.jkt;
    if (jkt && !dpop) {
      throw new Unauthorized('this access token is DPoP-bound: present it as "DPoP <access token>" with a DPoP proof', 'invalid_token', 'DPoP');
    }
    if (dpop && !jkt) throw new Unauthorized('this access token is not DPoP-bound: present it as "Bearer <access token>"', 'invalid_token', 'DPoP');
    if (jkt) {
      const failure = await checkProof(ctx.get('dpop') || undefined, { method: ctx.method, path: ctx.path }, token, jkt);
      if (failure) throw new Unauthorized(failure, 'invalid_dpop_proof', 'DPoP');
    }
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
