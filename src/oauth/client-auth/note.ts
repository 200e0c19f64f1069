import { AsyncLocalStorage } from 'node:async_hooks';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { CredentialSecrets } from '../../credentials/credential.entity.ts';

/**
 * What one /token request learns about its client on the way, kept in the request's async
 * context: the credential row read together with the agent (so that the secret check needs no
 * second query), and, for the audit event, which credential matched or why none did.
 */
export interface ClientAuthNote {
  prefetched?: { agentId: string; credentialId: string | undefined; credential: CredentialSecrets | null };
  credentialId?: string;
  reason?: string;
}

export const clientAuthNotes = new AsyncLocalStorage<ClientAuthNote>();

function basicCredentials(ctx: KoaContextWithOIDC): [string, string] | undefined {
  const [scheme, value] = ctx.get('authorization').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !value) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    // RFC 6749 §2.3.1: form-urlencoded before base64.
    const decode = (part: string) => decodeURIComponent(part.replace(/\+/g, ' '));
    return [decode(decoded.slice(0, colon)), decode(decoded.slice(colon + 1))];
  } catch {
    return undefined;
  }
}

/** The client id a /token request claimed, from the form or the Basic header. */
export function claimedClientId(ctx: KoaContextWithOIDC): string | null {
  const fromForm = ctx.oidc?.params?.client_id;
  if (typeof fromForm === 'string') return fromForm.slice(0, 200);
  return basicCredentials(ctx)?.[0].slice(0, 200) ?? null;
}

/** The client secret a /token request presented, from the form or the Basic header. */
export function presentedSecret(ctx: KoaContextWithOIDC | undefined): string | undefined {
  if (!ctx) return undefined;
  const fromForm = ctx.oidc?.params?.client_secret;
  if (typeof fromForm === 'string') return fromForm;
  return basicCredentials(ctx)?.[1];
}
