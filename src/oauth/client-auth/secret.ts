import type { Context } from 'koa';
import type { AgentsRepository } from '../../agents/agents.repository.ts';
import type { CredentialsService } from '../../credentials/credentials.service.ts';
import type { ClientAgent } from '../../agents/agent.entity.ts';
import { OAuthError } from '../errors.ts';
import { parseBasicAuth, type BasicCredentials } from '../../http/basic-auth.ts';
import { credentialIdOf } from '../../credentials/secrets.ts';
import { isUuid } from '../../lib/ids.ts';

// Client authentication for our own OAuth endpoints (introspection, revocation), with the same
// rules as oidc-provider applies at /token: client_secret_basic or client_secret_post (never
// both), an active agent, and its credential checked by CredentialsService.verifySecret.

/** As oidc-provider at /token: basic or post, never both (RFC 6749 §2.3.1). */
function credentialsFrom(ctx: Context, form: URLSearchParams): BasicCredentials {
  const header = ctx.get('authorization');
  const formId = form.get('client_id') ?? undefined;
  const formSecret = form.get('client_secret') ?? undefined;
  if (header) {
    const basic = parseBasicAuth(header);
    if (!basic) throw new OAuthError(400, 'invalid_request', 'invalid authorization header value format');
    if (formSecret !== undefined) {
      throw new OAuthError(400, 'invalid_request', 'client authentication must only be provided using one mechanism');
    }
    if (formId !== undefined && formId !== basic.clientId) {
      throw new OAuthError(400, 'invalid_request', 'mismatch between the client_id in the Authorization header and in the body');
    }
    return basic;
  }
  if (formId === undefined || formSecret === undefined) {
    throw new OAuthError(401, 'invalid_client', 'client authentication failed (no client authentication mechanism provided)');
  }
  return { clientId: formId, clientSecret: formSecret };
}

export async function authenticateClient(ctx: Context, form: URLSearchParams, agents: AgentsRepository, credentials: CredentialsService): Promise<ClientAgent> {
  const { clientId, clientSecret } = credentialsFrom(ctx, form);
  // The agent and the credential its secret names, in one query.
  const found = isUuid(clientId) ? await agents.findActiveWithCredential(clientId, credentialIdOf(clientSecret)) : null;
  // One answer for an unknown client, a suspended one and a wrong secret (RFC 6749 §5.2).
  if (!found || !(await credentials.verifySecret(found.agent.id, clientSecret, found.credential)).ok) {
    throw new OAuthError(401, 'invalid_client', 'client authentication failed');
  }
  return found.agent;
}
