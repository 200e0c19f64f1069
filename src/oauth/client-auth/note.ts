import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, Next } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { CredentialSecrets } from '../../credentials/credential.entity.ts';
import { parseBasicAuth } from '../../http/basic-auth.ts';

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
}

export const clientAuthNotes = new AsyncLocalStorage<ClientAuthNote>();

/** Provider middleware: every request through oidc-provider carries a note of its own. */
export function noteClientAuth() {
  return function withClientAuthNote(_ctx: Context, next: Next) {
    return clientAuthNotes.run({}, next);
  };
}

/** The client id a /token request claimed, from the form or the Basic header. */
export function claimedClientId(ctx: KoaContextWithOIDC): string | null {
  const fromForm = ctx.oidc?.params?.client_id;
  if (typeof fromForm === 'string') return fromForm.slice(0, 200);
  return parseBasicAuth(ctx.get('authorization'))?.clientId.slice(0, 200) || null;
}

/** The client secret a /token request presented, from the form or the Basic header. */
export function presentedSecret(ctx: KoaContextWithOIDC | undefined): string | undefined {
  if (!ctx) return undefined;
  const fromForm = ctx.oidc?.params?.client_secret;
  if (typeof fromForm === 'string') return fromForm;
  return parseBasicAuth(ctx.get('authorization'))?.clientSecret;
}
