import type { Context } from 'koa';
import type { ClientAgent } from '../../agents/agent.entity.ts';
import type { AuditWriter } from '../../audit/audit.writer.ts';
import { clientEvent } from '../../audit/events.ts';
import type { RevocationsRepository } from '../revocations.repository.ts';
import type { AccessTokenVerifier } from '../verifier.ts';
import { clientTokenRequest, jtiOf, type ClientAuthDeps } from './form.ts';

// POST /token/revoke, RFC 7009. Ours, not oidc-provider's: it refuses JWT access tokens.

/**
 * A client revokes its own tokens. An invalid, expired or foreign token changes nothing and is
 * not an error (§2.2). Returns whether a revocation was recorded.
 */
export async function revoke(
  verifier: Pick<AccessTokenVerifier, 'decode'>,
  revocations: Pick<RevocationsRepository, 'revoke'>,
  caller: ClientAgent,
  token: string,
): Promise<boolean> {
  const claims = await verifier.decode(token);
  if (!claims || claims.client_id !== caller.id || claims.exp * 1000 <= Date.now()) return false;
  await revocations.revoke(claims.jti, claims.sub, claims.org_id, new Date(claims.exp * 1000));
  return true;
}

export interface RevocationDeps extends ClientAuthDeps {
  verifier: Pick<AccessTokenVerifier, 'decode'>;
  revocations: Pick<RevocationsRepository, 'revoke'>;
  auditWriter: Pick<AuditWriter, 'write'>;
}

/** The handler; its route puts the settle step before it, so that every instance answers inactive for a revoked token. */
export function revocationEndpoint({ verifier, revocations, auditWriter, ...client }: RevocationDeps) {
  return async function revokeToken(ctx: Context) {
    const { caller, token } = await clientTokenRequest(ctx, 'revoke', client);
    const revoked = await revoke(verifier, revocations, caller, token);
    // Nothing changed: the settle step has nothing to wait for.
    ctx.state.changed = revoked;
    await auditWriter.write(clientEvent(ctx, { id: caller.id, orgId: caller.orgId }, 'token.revoked', { type: 'token', id: jtiOf(token) }, { revoked }));
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 200;
    ctx.body = '';
  };
}
