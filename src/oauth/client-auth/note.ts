import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, Next } from 'koa';
import { decodeJwt } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { CredentialSecrets } from '../../credentials/credential.entity.ts';
import { parseBasicAuth } from '../../http/basic-auth.ts';
import type { AssertionKeys } from './private-key-jwt.ts';
import type { ClientAgent, FederatedIdentity } from '../../agents/agent.entity.ts';

/**
 * What one /token request learns about its client on the way, kept in the request's async
 * context: the credential row read together with the agent (so that the secret check needs no
 * second query), and, for the audit event, which credential matched or why none did.
 */
export interface ClientAuthNote {
  prefetched?: { agentId: string; credentialId: string | undefined; credential: CredentialSecrets | null };
  credentialId?: string;
  reason?: string;
  /** The client id whose agent was looked up: a failure now counts towards throttling (hooks/auth-throttle.ts). */
  lookedUp?: string;
  /** Refused with 429 before anything was looked up: no event per request. */
  refused?: boolean;
  /** private_key_jwt: the keys the assertion was checked against, and which credential holds each. */
  assertionKeys?: AssertionKeys;
  /** private_key_jwt: the replay id of the assertion's jti (a replay of it is `assertion_replayed`, of anything else a DPoP proof's). */
  replayId?: string;
  /** jwt-bearer (RFC 7523 §2.1): the client named after the assertion (hooks/federated-client.ts), and why it cannot federate, if it cannot. */
  federation?: FederatedNote;
}

export interface FederatedNote {
  /** The client id put in the request: the agent's, or FEDERATION_UNMAPPED_CLIENT_ID. */
  clientId: string;
  /** The assertion's iss and sub, unverified until the grant has checked it. */
  issuer?: string;
  subject?: string;
  agent?: ClientAgent;
  identity?: FederatedIdentity;
  failure?: string;
}

export const clientAuthNotes = new AsyncLocalStorage<ClientAuthNote>();

/** Provider middleware: every request through oidc-provider carries a note of its own. */
export function noteClientAuth() {
  return function withClientAuthNote(_ctx: Context, next: Next) {
    return clientAuthNotes.run({}, next);
  };
}

/** The client id a /token request claimed, from the form, the Basic header or the client assertion's sub (as oidc-provider reads it). */
export function claimedClientId(ctx: KoaContextWithOIDC): string | null {
  const fromForm = ctx.oidc?.params?.client_id;
  if (typeof fromForm === 'string') return fromForm.slice(0, 200);
  const assertion = presentedAssertion(ctx);
  if (assertion !== undefined) {
    try {
      const { sub } = decodeJwt(assertion);
      return typeof sub === 'string' ? sub.slice(0, 200) : null;
    } catch {
      return null;
    }
  }
  return parseBasicAuth(ctx.get('authorization'))?.clientId.slice(0, 200) || null;
}

/** The client secret a /token request presented, from the form or the Basic header. */
export function presentedSecret(ctx: KoaContextWithOIDC | undefined): string | undefined {
  if (!ctx) return undefined;
  const fromForm = ctx.oidc?.params?.client_secret;
  if (typeof fromForm === 'string') return fromForm;
  return parseBasicAuth(ctx.get('authorization'))?.clientSecret;
}

/** The client assertion of a request (RFC 7523 §2.2), when it authenticates with one. */
export function presentedAssertion(ctx: KoaContextWithOIDC | undefined): string | undefined {
  const assertion = ctx?.oidc?.params?.client_assertion;
  return typeof assertion === 'string' ? assertion : undefined;
}
