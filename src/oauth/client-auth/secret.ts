import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { ClientAgent } from '../../agents/agent.entity.ts';
import type { CredentialsService } from '../../credentials/credentials.service.ts';
import { credentialIdOf } from '../../credentials/secrets.ts';
import { parseBasicAuth, type BasicCredentials } from '../../http/basic-auth.ts';
import { isUuid } from '../../lib/ids.ts';
import { OAuthError, tooManyRequests } from '../errors.ts';
import type { AuthThrottle, ThrottledEndpoint } from '../../throttling/auth-throttle.ts';
import { throttledDescription } from '../hooks/auth-throttle.ts';
import type { ClientStore } from '../client-store.ts';
import { clientAuthNotes } from './note.ts';

// client_secret_basic and client_secret_post: an agent's credentials are the source of truth for
// its secret (CredentialsService.verifySecret). At /token, oidc-provider reads the client and
// calls Client#compareClientSecret, which we replace; at our own endpoints (introspection,
// revocation) authenticateClient applies the same rules.

/** At /token: the provider's secret compare checks the agent's credentials instead of its metadata. */
export function useAgentSecrets(provider: Provider, credentials: Pick<CredentialsService, 'verifySecret'>): void {
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(this: { clientId: string }, actual: string) {
    const note = clientAuthNotes.getStore();
    const pre = note?.prefetched;
    // The row the adapter read with the agent, when it is the one this secret names.
    const prefetched = pre && pre.agentId === this.clientId && pre.credentialId === credentialIdOf(actual) ? pre.credential : undefined;
    const check = await credentials.verifySecret(this.clientId, actual, prefetched);
    if (note) {
      if (check.ok) note.credentialId = check.credentialId;
      else note.reason = check.reason;
    }
    return check.ok;
  };
}

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

/** At our own endpoints: the calling agent, or invalid_client. */
export async function authenticateClient(
  ctx: Context,
  form: URLSearchParams,
  endpoint: ThrottledEndpoint,
  deps: {
    clients: Pick<ClientStore, 'findActiveWithCredential'>;
    credentials: Pick<CredentialsService, 'verifySecret'>;
    throttle: Pick<AuthThrottle, 'refusedPair' | 'failed'>;
  },
): Promise<ClientAgent> {
  const { clientId, clientSecret } = credentialsFrom(ctx, form);
  // A malformed client id names nobody: refused at no cost, so not counted.
  if (!isUuid(clientId)) throw new OAuthError(401, 'invalid_client', 'client authentication failed');
  const ip = ctx.ip;
  const wait = deps.throttle.refusedPair(clientId, ip, endpoint);
  if (wait !== undefined) throw tooManyRequests(wait, throttledDescription(wait));
  // The agent and the credential its secret names, in one query.
  const found = await deps.clients.findActiveWithCredential(clientId, credentialIdOf(clientSecret));
  // One answer for an unknown client, a suspended one and a wrong secret (RFC 6749 §5.2).
  if (!found || !(await deps.credentials.verifySecret(found.agent.id, clientSecret, found.credential)).ok) {
    await deps.throttle.failed(ctx, clientId, ip);
    throw new OAuthError(401, 'invalid_client', 'client authentication failed');
  }
  return found.agent;
}
