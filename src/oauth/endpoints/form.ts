import type { Context } from 'koa';
import { decodeJwt } from 'jose';
import type { ClientAgent } from '../../agents/agent.entity.ts';
import type { CredentialsService } from '../../credentials/credentials.service.ts';
import { OAuthError } from '../errors.ts';
import type { ClientStore } from '../client-store.ts';
import { authenticateClient } from '../client-auth/secret.ts';
import { readBody } from '../../http/body.ts';
import type { AuthThrottle, ThrottledEndpoint } from '../../throttling/auth-throttle.ts';
import { throttledDescription } from '../hooks/auth-throttle.ts';
import { tooManyRequests } from '../errors.ts';
import type { ReplaysRepository } from '../replays.repository.ts';

const FORM_LIMIT_BYTES = 64 * 1024;

/** What authenticating a client at our endpoints takes. */
export interface ClientAuthDeps {
  clients: Pick<ClientStore, 'findActiveWithCredential' | 'findActiveWithKeys'>;
  credentials: Pick<CredentialsService, 'verifySecret'>;
  throttle: Pick<AuthThrottle, 'refusedIp' | 'refusedPair' | 'failed'>;
  replays: Pick<ReplaysRepository, 'claim'>;
  /** PUBLIC_URL: what a client assertion's aud names. */
  issuer: string;
}

/** Reads an application/x-www-form-urlencoded body (OAuth endpoints), bounded in size. */
export async function readForm(ctx: Context): Promise<URLSearchParams> {
  const type = ctx.get('content-type').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError(400, 'invalid_request', 'the request body must be application/x-www-form-urlencoded');
  }
  const body = await readBody(ctx, FORM_LIMIT_BYTES, () => new OAuthError(400, 'invalid_request', 'the request body is too large'));
  const form = new URLSearchParams(body.toString('utf8'));
  for (const name of new Set(form.keys())) {
    // RFC 6749 §3.2: parameters must not be included more than once.
    if (form.getAll(name).length > 1) throw new OAuthError(400, 'invalid_request', `parameter ${name} must only be provided once`);
  }
  return form;
}

/** The form of a token request to our endpoints (introspection, revocation): its client authenticated, `token` present. */
export async function clientTokenRequest(ctx: Context, endpoint: ThrottledEndpoint, deps: ClientAuthDeps): Promise<{ caller: ClientAgent; token: string }> {
  const { throttle } = deps;
  // A refused address is answered before its body is read.
  const wait = throttle.refusedIp(ctx.ip, endpoint);
  if (wait !== undefined) throw tooManyRequests(wait, throttledDescription(wait));
  const form = await readForm(ctx);
  const caller = await authenticateClient(ctx, form, endpoint, deps);
  const token = form.get('token');
  if (!token) throw new OAuthError(400, 'invalid_request', 'missing required parameter token');
  // token_type_hint is accepted and not needed: every token here is a JWT access token.
  return { caller, token };
}

/** The jti of something that looks like a JWT, for the audit target; nothing is trusted from it. */
export function jtiOf(token: string): string | null {
  try {
    const { jti } = decodeJwt(token);
    return typeof jti === 'string' ? jti.slice(0, 200) : null;
  } catch {
    return null;
  }
}
