import type { Context, Next } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AuditWriter } from '../../audit/audit.writer.ts';
import { clientEvent } from '../../audit/events.ts';
import type { Logger } from '../../lib/logger.ts';
import { isUuid } from '../../lib/ids.ts';
import type { ClientStore } from '../client-store.ts';
import type { TokenCounter } from '../../usage/token-counter.ts';
import type { AgentClient } from '../clients.ts';
import { claimedClientId, clientAuthNotes, type ClientAuthNote } from '../client-auth/note.ts';
import { dpopErrors } from './dpop-errors.ts';
import { delegationOf } from '../grants/token-exchange.ts';

// token.issued (token.exchanged for RFC 8693) or token.denied for every /token answer below 500, committed before the answer
// leaves: no token without its event. (And, being the one hook that looks at every answer inside
// the note, the DPoP answers oidc-provider words too vaguely: dpop-errors.ts.) Runs inside noteClientAuth (client-auth/note.ts), whose
// note says which credential matched or why none did.

export interface TokenAuditDeps {
  writer: Pick<AuditWriter, 'write'>;
  clients: Pick<ClientStore, 'findForDenial'>;
  logger: Logger;
  /** The key that signs this Provider's tokens. */
  activeKid: string;
  /** Told of every token issued (usage and quotas). */
  counter: Pick<TokenCounter, 'issued'>;
}

async function recordTokenAnswer(ctx: KoaContextWithOIDC, note: ClientAuthNote, { writer, clients, activeKid, counter }: TokenAuditDeps): Promise<void> {
  const client = ctx.oidc.client as unknown as AgentClient | undefined;
  const body = ctx.body as Record<string, unknown>;
  const koaCtx = ctx as unknown as Context;
  if (ctx.status === 200) {
    const token = ctx.oidc.entities.ClientCredentials as unknown as {
      jti: string;
      scope?: string;
      resourceServer?: { audience?: string };
      'x5t#S256'?: string;
      jkt?: string;
    };
    const delegation = delegationOf(token);
    // RFC 8693: an exchanged token also says who it is for, who acts, and the chain it came down (jtis only, never a token).
    const how = delegation
      ? {
          subject: delegation.subject,
          actor: client!.clientId,
          chain: delegation.agents,
          subjectJti: delegation.tokens[delegation.tokens.length - 1].jti,
        }
      : federationDetails(note);
    await writer.write(
      clientEvent(
        koaCtx,
        { id: client!.clientId, orgId: client!.org_id },
        delegation ? 'token.exchanged' : 'token.issued',
        { type: 'token', id: token.jti },
        {
          ...how,
          jti: token.jti,
          scope: token.scope ?? null,
          aud: token.resourceServer?.audience ?? null,
          kid: activeKid,
          credentialId: note.credentialId ?? null,
          // The thumbprint of the key a DPoP-bound token is bound to: public, and what a proof must match.
          ...(token.jkt ? { dpopJkt: token.jkt } : {}),
          expiresIn: body.expires_in,
        },
      ),
    );
    counter.issued(client!.clientId, client!.org_id);
    return;
  }
  if (note.federation) return recordFederationDenial(ctx, note, writer);
  const claimed = client?.clientId ?? claimedClientId(ctx);
  let orgId = client?.org_id ?? null;
  // An assertion checked against the agent's keys that failed without a reason of its own failed oidc-provider's checks.
  let reason = note.reason ?? (note.assertionKeys && body?.error === 'invalid_client' ? 'bad_assertion' : String(body?.error ?? 'error'));
  if (body?.error === 'invalid_client' && !client && !note.reason) {
    // The provider loads only active agents: tell an unknown client from a suspended one.
    const agent = claimed && isUuid(claimed) ? await clients.findForDenial(claimed) : null;
    orgId = agent?.orgId ?? null;
    reason = !agent ? 'unknown_client' : agent.status === 'active' ? 'invalid_client' : `agent_${agent.status}`;
  }
  await writer.write(
    clientEvent(
      koaCtx,
      { id: claimed, orgId },
      'token.denied',
      { type: 'token', id: null },
      { error: body?.error ?? null, reason, scope: ctx.oidc.params?.scope ?? null, resource: ctx.oidc.params?.resource ?? null },
      { outcome: 'failure', agentId: orgId ? claimed : null },
    ),
  );
}

/** jwt-bearer (RFC 7523 §2.1): which grant, and the external identity the assertion claimed (public names, never the assertion). */
function federationDetails(note: ClientAuthNote) {
  const federation = note.federation;
  if (!federation) return {};
  return { grant: 'jwt-bearer', federatedIssuer: federation.issuer?.slice(0, 500) ?? null, federatedSubject: federation.subject?.slice(0, 500) ?? null };
}

async function recordFederationDenial(ctx: KoaContextWithOIDC, note: ClientAuthNote, writer: Pick<AuditWriter, 'write'>): Promise<void> {
  const body = ctx.body as Record<string, unknown>;
  const agent = note.federation?.agent;
  await writer.write(
    clientEvent(
      ctx as unknown as Context,
      { id: agent?.id ?? null, orgId: agent?.orgId ?? null },
      'token.denied',
      { type: 'token', id: null },
      {
        error: body?.error ?? null,
        reason: note.reason ?? String(body?.error ?? 'error'),
        ...federationDetails(note),
        scope: ctx.oidc.params?.scope ?? null,
        resource: ctx.oidc.params?.resource ?? null,
      },
      { outcome: 'failure', agentId: agent?.id ?? null },
    ),
  );
}

/** Provider middleware: after /token has answered, its audit event; a failed write fails the request. */
export function tokenAudit(deps: TokenAuditDeps) {
  return async function auditTokenAnswer(ctx: Context, next: Next) {
    await next();
    const oidcCtx = ctx as unknown as KoaContextWithOIDC;
    if (oidcCtx.oidc?.route !== 'token' || ctx.status >= 500) return;
    const note = clientAuthNotes.getStore() ?? {};
    // A refusal (429) is recorded once per refused period, not per request.
    if (note.refused) return;
    if (ctx.status === 400) dpopErrors(ctx, note);
    try {
      await recordTokenAnswer(oidcCtx, note, deps);
    } catch (err) {
      deps.logger.error('could not record the token event; the request fails', { requestId: ctx.response.get('x-request-id'), err });
      ctx.state.serverError = err;
      ctx.status = 500;
      ctx.body = { error: 'server_error', error_description: 'an unexpected error occurred' };
    }
  };
}
