import { createHash } from 'node:crypto';
import { SIGNING_ALGS } from '../../config/index.ts';
import { Lru } from '../lib/lru.ts';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Keyset } from '../keys/key-ring.ts';
import { publicJwkOf } from '../keys/keys.service.ts';
import type { ClientStore } from './client-store.ts';

// Decides whether an access token of this IdP is good: the one function behind introspection
// and the management API's bearer check. A token is good only if its signature verifies with
// one of our published keys (a revoked key is not published), it is an RFC 9068 access token
// (typ at+jwt) from our issuer, it has not expired, its jti is not revoked and its agent is
// active. The last three come from ClientStore.tokenState on every call (this instance's memory,
// kept strictly in step by src/coherence, or the database), so a revocation or a suspension made
// through any instance holds on every instance at once.

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
  /** A DPoP-bound token (RFC 9449 §6): the thumbprint of the key it is bound to. */
  cnf?: { jkt?: string };
}

export interface VerifiedToken {
  claims: AccessTokenClaims;
  /** The token's scopes that its agent still holds now. */
  scopes: string[];
}

type DecodedToken = AccessTokenClaims & { kid: string };

/** How many verified tokens are remembered (about 0.5 kB each). */
const VERIFIED_MEMORY_ENTRIES = 20_000;

function audienceIncludes(aud: string | string[], audience: string): boolean {
  return Array.isArray(aud) ? aud.includes(audience) : aud === audience;
}

export class AccessTokenVerifier {
  readonly #issuer: string;
  readonly #clients: Pick<ClientStore, 'tokenState'>;
  #jwks: ReturnType<typeof createLocalJWKSet>;
  /**
   * Tokens whose signature and claims verified, by SHA-256 of the token: a resource server
   * introspects the same token again and again, and a signature that verified once verifies
   * forever. Expiry is checked on every use; everything that can change (revoked jti, revoked
   * key, agent state) is checked by state() every time. Forgotten when the key set changes.
   */
  readonly #verified = new Lru<string, DecodedToken>(VERIFIED_MEMORY_ENTRIES);

  constructor(issuer: string, keyset: Keyset, clients: Pick<ClientStore, 'tokenState'>) {
    this.#issuer = issuer;
    this.#clients = clients;
    this.#jwks = this.#localJwks(keyset);
  }

  #localJwks(keyset: Keyset) {
    return createLocalJWKSet({ keys: keyset.privateJwks.map(publicJwkOf) });
  }

  useKeyset(keyset: Keyset): void {
    this.#jwks = this.#localJwks(keyset);
    this.#verified.clear();
  }

  /** Only the signature and the claims, no database: is this one of our tokens at all? */
  async decode(token: string, audience?: string): Promise<DecodedToken | undefined> {
    const digest = createHash('sha256').update(token).digest('base64url');
    let claims = this.#verified.get(digest);
    if (!claims) {
      claims = await this.#verifySignature(token);
      if (!claims) return undefined;
      this.#verified.set(digest, claims);
    }
    // As jose does: expired from the second of exp on.
    if (claims.exp <= Math.floor(Date.now() / 1000)) {
      this.#verified.delete(digest);
      return undefined;
    }
    if (audience !== undefined && !audienceIncludes(claims.aud, audience)) return undefined;
    return claims;
  }

  async #verifySignature(token: string): Promise<DecodedToken | undefined> {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, this.#jwks, {
        issuer: this.#issuer,
        typ: 'at+jwt',
        algorithms: [...SIGNING_ALGS],
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
    const state = await this.#clients.tokenState(claims.sub, claims.jti, kid);
    if (!state || state.revoked || state.keyRevoked || state.agentStatus !== 'active' || state.agentOrgId !== claims.org_id) return undefined;
    const held = new Set(state.agentScopes);
    const scopes = (claims.scope ?? '').split(' ').filter((s) => s && held.has(s));
    return { claims: rest as AccessTokenClaims, scopes };
  }
}
