import type { Context } from 'koa';
import type { ClientAgent } from '../../agents/agent.entity.ts';
import type { AuditWriter } from '../../audit/audit.writer.ts';
import { clientEvent } from '../../audit/events.ts';
import { mayIntrospect } from '../../policies/visibility.ts';
import type { Schemas } from '../../http/validate.ts';
import type { AccessTokenVerifier } from '../verifier.ts';
import { clientTokenRequest, jtiOf, type ClientAuthDeps } from './form.ts';

// POST /token/introspect, RFC 7662. Ours, not oidc-provider's: it refuses JWT access tokens.

/** The answer, as openapi.yaml's Introspection schema gives it. */
export type Introspection = Schemas['Introspection'];

const INACTIVE: Introspection = { active: false };

/** What `caller` may learn of `token`: its claims if it is active and the caller may see it, else only `active: false`. */
export async function introspect(verifier: Pick<AccessTokenVerifier, 'verify'>, caller: ClientAgent, token: string): Promise<Introspection> {
  const verified = await verifier.verify(token);
  if (!verified || !mayIntrospect(caller, verified.claims)) return INACTIVE;
  const { claims } = verified;
  return {
    active: true,
    iss: claims.iss,
    sub: claims.sub,
    client_id: claims.client_id,
    aud: claims.aud,
    ...(claims.scope ? { scope: claims.scope } : {}),
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    // RFC 9449 §6.2: a bound token says so, and names its key.
    ...(claims.cnf?.jkt ? { token_type: 'DPoP' as const, cnf: { jkt: claims.cnf.jkt } } : { token_type: 'Bearer' as const }),
    org_id: claims.org_id,
    // RFC 8693 §4.1: an exchanged token names who acts for its subject.
    ...(claims.act ? { act: claims.act } : {}),
  };
}

export interface IntrospectionDeps extends ClientAuthDeps {
  verifier: Pick<AccessTokenVerifier, 'verify'>;
  auditWriter: Pick<AuditWriter, 'write'>;
}

export function introspectionEndpoint({ verifier, auditWriter, ...client }: IntrospectionDeps) {
  return async function introspectToken(ctx: Context) {
    const { caller, token } = await clientTokenRequest(ctx, 'introspect', client);
    const answer = await introspect(verifier, caller, token);
    await auditWriter.write(
      clientEvent(
        ctx,
        { id: caller.id, orgId: caller.orgId },
        'token.introspected',
        { type: 'token', id: jtiOf(token) },
        { active: answer.active },
        { agentId: answer.active ? answer.sub : undefined },
      ),
    );
    ctx.set('Cache-Control', 'no-store');
    ctx.body = answer;
  };
}
