import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Keyset } from '../keys/key-ring.ts';
import { publicJwkOf } from '../keys/keys.service.ts';
import type { TokensRepository } from '../tokens/tokens.repository.ts';

// Decides whether an access token of this IdP is good: the one function behind introspection
// and the management API's bearer check. A token is good only if its signature verifies with
// one of our published keys (a revoked key is not published), it is an RFC 9068 access token
// (typ at+jwt) from our issuer, it has not expired, its jti is not revoked and its agent is
// active. The last two are read from the database on every call, so a revocation or a
// suspension made through any instance holds on every instance at once.

export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  client_id: string;
  org_id: string;
  jti: string;
  scope?: string;
  aud: string | string[];
  exp: number;
  iat: number;
}

const SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

export interface VerifiedToken {
  claims: AccessTokenClaims;
  /** The token's scopes that its agent still holds now. */
  scopes: string[];
}

export class AccessTokenVerifier {
  readonly #issuer: string;
  readonly #tokens: TokensRepository;
  #jwks: ReturnType<typeof createLocalJWKSet>;

  constructor(issuer: string, keyset: Keyset, tokens: TokensRepository) {
    this.#issuer = issuer;
    this.#tokens = tokens;
    this.#jwks = this.#localJwks(keyset);
  }

  #localJwks(keyset: Keyset) {
    return createLocalJWKSet({ keys: keyset.privateJwks.map(publicJwkOf) });
  }

  useKeyset(keyset: Keyset): void {
    this.#jwks = this.#localJwks(keyset);
  }

  /** Only the signature and the claims, no database: is this one of our tokens at all? */
  async decode(token: string, audience?: string): Promise<(AccessTokenClaims & { kid: string }) | undefined> {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, this.#jwks, {
        issuer: this.#issuer,
        audience,
        typ: 'at+jwt',
        algorithms: SIGNING_ALGS,
        requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat', 'aud'],
      });
      const claims = payload as AccessTokenClaims;
      if (typeof claims.org_id !== 'string' || typeof claims.jti !== 'string' || claims.sub !== claims.client_id) return undefined;
      return { ...claims, kid: protectedHeader.kid! };
    } catch {
      return undefined;
    }
  }

  /** A token that is active now (for `audience`, when given), else undefined. */
  async verify(token: string, audience?: string): Promise<VerifiedToken | undefined> {
    const claims = await this.decode(token, audience);
    if (!claims) return undefined;
    const { kid, ...rest } = claims;
    const state = await this.#tokens.state(claims.sub, claims.jti, kid);
    if (!state || state.revoked || state.keyRevoked || state.agentStatus !== 'active' || state.agentOrgId !== claims.org_id) return undefined;
    const held = new Set(state.agentScopes);
    const scopes = (claims.scope ?? '').split(' ').filter((s) => s && held.has(s));
    return { claims: rest as AccessTokenClaims, scopes };
  }
}
