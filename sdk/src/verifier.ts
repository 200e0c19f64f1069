import { errors, jwtVerify, type JWTPayload } from 'jose';
import { clientAuthentication, type ClientCredentials } from './client-auth.ts';
import { cachedDiscovery } from './discovery.ts';
import { dpopChecker, type DpopCheckOptions } from './dpop-check.ts';
import { OAuthError, TokenError } from './errors.ts';
import { requestJson, type FetchLike } from './http.ts';
import { JwksCache } from './jwks.ts';
import type { PrivateKeyInput } from './keys.ts';

// A resource server's check of an access token (RFC 9068): offline against the JWKS, and in
// strict mode also by introspection (RFC 7662), so that a revocation is honoured before `exp`.
// A DPoP-bound token (cnf.jkt) is accepted only with its proof (RFC 9449 §7.1).

export interface VerifierOptions {
  issuer: string;
  /** This resource server's identifier: the token's `aud` must hold it (or one of them). */
  audience: string | string[];
  /** Scopes every token must carry. */
  requiredScopes?: string[];
  /** Leeway for `exp`, `nbf` and `iat` (default 0). */
  clockToleranceSeconds?: number;
  /**
   * Strict mode: the credentials of this resource server, an agent with `tokens:introspect` in
   * the agents' org: `clientSecret`, or `privateKey` (+ `kid?`, `alg?`) for private_key_jwt.
   */
  introspection?: { clientId: string; clientSecret?: string; privateKey?: PrivateKeyInput; kid?: string; alg?: string; cacheSeconds?: number };
  /** DPoP proofs: the `iat` window and the replay cache's size. */
  dpop?: DpopCheckOptions;
  fetch?: FetchLike;
  /** The clock (ms since the epoch). */
  now?: () => number;
}

export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  exp: number;
  client_id?: string;
  scope?: string;
  org_id?: string;
  /** RFC 7800 / RFC 9449 §6: a DPoP-bound token's key thumbprint. */
  cnf?: { jkt?: string; [member: string]: unknown };
}

/** The request a token came with: what a DPoP-bound token's proof is checked against. */
export interface VerifyRequest {
  /** The request's method. */
  method?: string;
  /** The URL the client sent the request to, as it sees it (scheme, host, path; the query is ignored). */
  url?: string | URL;
  /** Its headers: `authorization` gives the scheme (`Bearer`, `DPoP`), `dpop` the proof. A Headers or node:http's headers object. */
  headers?: Headers | Record<string, string | string[] | undefined>;
}

export interface Verifier {
  /**
   * The token's claims, or a TokenError (`invalid_token`, `insufficient_scope`, `invalid_dpop_proof`).
   * Other errors mean the server could not be asked. A DPoP-bound token needs `request`.
   */
  verify(token: string, request?: VerifyRequest): Promise<AccessTokenClaims>;
}

function header(headers: VerifyRequest['headers'], name: string): string | string[] | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  return (headers as Record<string, string | string[] | undefined>)[name];
}

/** The scheme the token came with: Authorization's, else DPoP when a proof came, else Bearer. */
function schemeOf(request: VerifyRequest | undefined): string {
  const authorization = header(request?.headers, 'authorization');
  const scheme = typeof authorization === 'string' ? /^(\S+)\s/.exec(authorization)?.[1] : undefined;
  if (scheme) return scheme.toLowerCase();
  return header(request?.headers, 'dpop') !== undefined ? 'dpop' : 'bearer';
}

interface Introspected {
  active: boolean;
  until: number;
}

// Answers kept at most this many; past it, the expired ones are dropped first, then the oldest.
const INTROSPECTION_CACHE_SIZE = 10_000;

export function scopesOf(claims: { scope?: unknown }): string[] {
  return typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
}

/** Throws insufficient_scope unless the claims carry every one of `scopes`. */
export function requireScopes(claims: { scope?: unknown }, scopes: string[] | undefined): void {
  if (!scopes?.length) return;
  const granted = new Set(scopesOf(claims));
  const missing = scopes.filter((s) => !granted.has(s));
  if (missing.length) throw new TokenError('insufficient_scope', `the token lacks the scope ${missing.join(' ')}`, { requiredScopes: scopes });
}

export function createVerifier(options: VerifierOptions): Verifier {
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const now = options.now ?? Date.now;
  const metadata = cachedDiscovery(fetchImpl, options.issuer);
  const jwks = new JwksCache(async () => (await metadata()).jwks_uri, fetchImpl, now);
  const introspected = new Map<string, Introspected>();
  const clockToleranceSeconds = options.clockToleranceSeconds ?? 0;
  const checkProof = dpopChecker({ ...options.dpop, clockToleranceSeconds, now });
  const introspectionAuth =
    options.introspection && clientAuthentication(options.introspection as ClientCredentials, options.issuer, 'createVerifier introspection');

  async function isActive(token: string, exp: number): Promise<boolean> {
    const { cacheSeconds = 30 } = options.introspection!;
    const cached = introspected.get(token);
    if (cached && now() < cached.until) return cached.active;
    const { introspection_endpoint } = await metadata();
    if (!introspection_endpoint) throw new OAuthError('invalid_configuration', 0, `the issuer ${options.issuer} advertises no introspection_endpoint`);
    const answer = (await requestJson(fetchImpl, introspection_endpoint, async () => {
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
      const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
      await introspectionAuth!.apply(headers, form);
      return { method: 'POST', headers, body: form.toString() };
    })) as { active?: unknown };
    const active = answer?.active === true;
    if (introspected.size >= INTROSPECTION_CACHE_SIZE) prune();
    // Never past exp: an answer must not keep an expired token alive.
    introspected.set(token, { active, until: Math.min(now() + cacheSeconds * 1000, exp * 1000) });
    return active;
  }

  function prune() {
    const at = now();
    for (const [token, entry] of introspected) if (entry.until <= at) introspected.delete(token);
    for (const token of introspected.keys()) {
      if (introspected.size < INTROSPECTION_CACHE_SIZE) break;
      introspected.delete(token);
    }
  }

  /** RFC 9449 §7.1: a bound token comes as DPoP with its proof; an unbound one as Bearer. */
  async function checkBinding(token: string, claims: AccessTokenClaims, request: VerifyRequest | undefined): Promise<void> {
    const scheme = schemeOf(request);
    if (claims.cnf === undefined) {
      if (scheme === 'dpop') throw new TokenError('invalid_token', 'the token is not DPoP-bound: present it as Bearer', { dpop: true });
      return;
    }
    const jkt = (claims.cnf as { jkt?: unknown }).jkt;
    if (typeof jkt !== 'string') throw new TokenError('invalid_token', 'the token is bound (cnf) to something other than a DPoP key');
    if (scheme !== 'dpop') {
      throw new TokenError('invalid_token', 'the token is DPoP-bound: present it as Authorization: DPoP, with a DPoP proof', { dpop: true });
    }
    if (!request?.method || !request.url) throw new TypeError('verify: a DPoP-bound token is checked against the request: pass its method and url');
    await checkProof(token, jkt, { method: request.method, url: String(request.url), proof: header(request.headers, 'dpop') });
  }

  return {
    async verify(token, request) {
      let claims: AccessTokenClaims;
      try {
        ({ payload: claims } = (await jwtVerify(token, jwks.key, {
          issuer: options.issuer,
          audience: options.audience,
          typ: 'at+jwt',
          requiredClaims: ['exp', 'sub'],
          clockTolerance: clockToleranceSeconds,
          currentDate: new Date(now()),
        })) as { payload: AccessTokenClaims });
      } catch (err) {
        // jose's errors are about the token; anything else (the JWKS unreachable) is not the caller's fault.
        if (err instanceof errors.JOSEError) throw new TokenError('invalid_token', err.message, { cause: err });
        throw err;
      }
      await checkBinding(token, claims, request);
      if (options.introspection && !(await isActive(token, claims.exp)))
        throw new TokenError('invalid_token', 'the token is not active: revoked, or its agent suspended, or its signing key revoked');
      requireScopes(claims, options.requiredScopes);
      return claims;
    },
  };
}
