import { errors, jwtVerify, type JWTPayload } from 'jose';
import { cachedDiscovery } from './discovery.ts';
import { OAuthError, TokenError } from './errors.ts';
import { basicAuth, requestJson, type FetchLike } from './http.ts';
import { JwksCache } from './jwks.ts';

// A resource server's check of an access token (RFC 9068): offline against the JWKS, and in
// strict mode also by introspection (RFC 7662), so that a revocation is honoured before `exp`.

export interface VerifierOptions {
  issuer: string;
  /** This resource server's identifier: the token's `aud` must hold it (or one of them). */
  audience: string | string[];
  /** Scopes every token must carry. */
  requiredScopes?: string[];
  /** Leeway for `exp`, `nbf` and `iat` (default 0). */
  clockToleranceSeconds?: number;
  /** Strict mode: the credentials of this resource server, an agent with `tokens:introspect` in the agents' org. */
  introspection?: { clientId: string; clientSecret: string; cacheSeconds?: number };
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
}

export interface Verifier {
  /** The token's claims, or a TokenError (`invalid_token`, `insufficient_scope`). Other errors mean the server could not be asked. */
  verify(token: string): Promise<AccessTokenClaims>;
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

  async function isActive(token: string, exp: number): Promise<boolean> {
    const { clientId, clientSecret, cacheSeconds = 30 } = options.introspection!;
    const cached = introspected.get(token);
    if (cached && now() < cached.until) return cached.active;
    const { introspection_endpoint } = await metadata();
    if (!introspection_endpoint) throw new OAuthError('invalid_configuration', 0, `the issuer ${options.issuer} advertises no introspection_endpoint`);
    const answer = (await requestJson(fetchImpl, introspection_endpoint, {
      method: 'POST',
      headers: { authorization: basicAuth(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
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

  return {
    async verify(token) {
      let claims: AccessTokenClaims;
      try {
        ({ payload: claims } = (await jwtVerify(token, jwks.key, {
          issuer: options.issuer,
          audience: options.audience,
          typ: 'at+jwt',
          requiredClaims: ['exp', 'sub'],
          clockTolerance: options.clockToleranceSeconds ?? 0,
          currentDate: new Date(now()),
        })) as { payload: AccessTokenClaims });
      } catch (err) {
        // jose's errors are about the token; anything else (the JWKS unreachable) is not the caller's fault.
        if (err instanceof errors.JOSEError) throw new TokenError('invalid_token', err.message, { cause: err });
        throw err;
      }
      if (options.introspection && !(await isActive(token, claims.exp)))
        throw new TokenError('invalid_token', 'the token is not active: revoked, or its agent suspended, or its signing key revoked');
      requireScopes(claims, options.requiredScopes);
      return claims;
    },
  };
}
