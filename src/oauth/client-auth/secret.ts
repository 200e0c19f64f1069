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
import { CLIENT_ASSERTION_TYPE, verifyClientAssertion } from './private-key-jwt.ts';
import type { ReplaysRepository } from '../replays.repository.ts';
import { decodeJwt } from 'jose';

// client_secret_basic and client_secret_post: an agent's credentials are the source of truth for
// its secret (CredentialsService.verifySecret). At /token, oidc-provider reads the client and
// calls Client#compareClientSecret, which we replace; at our own endpoints (introspection,
// revocation) authenticateClient applies the same rules, and those of private_key_jwt
// (private-key-jwt.ts) when the request carries a client assertion.

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

type PresentedCredentials = BasicCredentials | { clientId: string; clientAssertion: string };

/** As oidc-provider at /token: basic, post or a client assertion, never two of them (RFC 6749 §2.3.1). */
function credentialsFrom(ctx: Context, form: URLSearchParams): PresentedCredentials {
  const header = ctx.get('authorization');
  const formId = form.get('client_id') ?? undefined;
  const formSecret = form.get('client_secret') ?? undefined;
  const assertion = form.get('client_assertion') ?? undefined;
  if (assertion !== undefined) {
    if (header || formSecret !== undefined) throw new OAuthError(400, 'invalid_request', 'client authentication must only be provided using one mechanism');
    if (form.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) {
      throw new OAuthError(400, 'invalid_request', `client_assertion_type must have value ${CLIENT_ASSERTION_TYPE}`);
    }
    let sub: unknown;
    try {
      sub = decodeJwt(assertion).sub;
    } catch {
      throw new OAuthError(400, 'invalid_request', 'invalid client_assertion format');
    }
    if (typeof sub !== 'string' || !sub) throw new OAuthError(401, 'invalid_client', 'sub (JWT subject) must be provided in the client_assertion JWT');
    if (formId !== undefined && formId !== sub) throw new OAuthError(400, 'invalid_request', 'client_id mismatch');
    return { clientId: sub, clientAssertion: assertion };
  }
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
    clients: Pick<ClientStore, 'findActiveWithCredential' | 'findActiveWithKeys'>;
    credentials: Pick<CredentialsService, 'verifySecret'>;
    throttle: Pick<AuthThrottle, 'refusedPair' | 'failed'>;
    replays: Pick<ReplaysRepository, 'claim'>;
    issuer: string;
  },
): Promise<ClientAgent> {
  const presented = credentialsFrom(ctx, form);
  const { clientId } = presented;
  // A malformed client id names nobody: refused at no cost, so not counted.
  if (!isUuid(clientId)) throw new OAuthError(401, 'invalid_client', 'client authentication failed');
  const ip = ctx.ip;
  const wait = deps.throttle.refusedPair(clientId, ip, endpoint);
  if (wait !== undefined) throw tooManyRequests(wait, throttledDescription(wait));
  if ('clientAssertion' in presented) {
    const found = await deps.clients.findActiveWithKeys(clientId);
    const check = found
      ? await verifyClientAssertion(presented.clientAssertion, clientId, found.keys, {
          issuer: deps.issuer,
          endpointUrl: deps.issuer + ctx.path,
          claimReplay: (id) => deps.replays.claim(id),
        })
      : undefined;
    if (!found || !check?.ok) {
      await deps.throttle.failed(ctx, clientId, ip);
      throw new OAuthError(401, 'invalid_client', check && !check.ok ? check.description : 'client authentication failed');
    }
    return found.agent;
  }
  const { clientSecret } = presented;
  // The agent and the credential its secret names, in one query.
  const found = await deps.clients.findActiveWithCredential(clientId, credentialIdOf(clientSecret));
  // One answer for an unknown client, a suspended one and a wrong secret (RFC 6749 §5.2).
  if (!found || !(await deps.credentials.verifySecret(found.agent.id, clientSecret, found.credential)).ok) {
    await deps.throttle.failed(ctx, clientId, ip);
    throw new OAuthError(401, 'invalid_client', 'client authentication failed');
  }
  return found.agent;
}
