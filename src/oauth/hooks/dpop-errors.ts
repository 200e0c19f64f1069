import type { Context } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { ClientAuthNote } from '../client-auth/note.ts';

/**
 * After /token answered 400: oidc-provider reports a replayed DPoP proof, and a missing proof of
 * an agent that requires DPoP, as invalid_grant with a generic description. Both are proof
 * errors (RFC 9449 §4.3, §11.1, as every other proof error is answered): invalid_dpop_proof,
 * saying what to do. The adapter's replay check (adapter.ts) noted which it was.
 */
export function dpopErrors(ctx: Context, note: ClientAuthNote): void {
  const body = ctx.body as { error?: string; error_description?: string } | undefined;
  if (body?.error !== 'invalid_grant') return;
  const client = (ctx as unknown as KoaContextWithOIDC).oidc?.client as { dpopBoundAccessTokens?: boolean } | undefined;
  if (note.reason === 'dpop_proof_replayed') {
    ctx.body = { error: 'invalid_dpop_proof', error_description: 'the DPoP proof was already used; make a new proof for every request' };
  } else if (client?.dpopBoundAccessTokens && !ctx.get('dpop')) {
    note.reason = 'dpop_required';
    ctx.body = { error: 'invalid_dpop_proof', error_description: 'this agent requires DPoP-bound tokens: send a DPoP proof (RFC 9449) with the request' };
  }
}
