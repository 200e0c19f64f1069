import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { AgentsRepository } from '../agents/agents.repository.ts';
import type { Keyset } from '../keys/keys.service.ts';
import { publicJwkOf } from '../keys/keys.service.ts';

// Checks an access token of this IdP: the one function behind the management API's bearer
// check (and, later, introspection). A token is good only if its signature verifies with one
// of our published keys, it is an RFC 9068 access token (typ at+jwt) from our issuer for the
// expected audience, it has not expired, and its agent is still active.

export interface AccessTokenClaims extends JWTPayload {
  sub: string;
  client_id: string;
  org_id: string;
  jti: string;
  scope?: string;
  exp: number;
  iat: number;
}

const SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

export class AccessTokenVerifier {
  readonly #issuer: string;
  readonly #agents: AgentsRepository;
  #jwks: ReturnType<typeof createLocalJWKSet>;

  constructor(issuer: string, keyset: Keyset, agents: AgentsRepository) {
    this.#issuer = issuer;
    this.#agents = agents;
    this.#jwks = this.#localJwks(keyset);
  }

  #localJwks(keyset: Keyset) {
    return createLocalJWKSet({ keys: keyset.privateJwks.map(publicJwkOf) });
  }

  useKeyset(keyset: Keyset): void {
    this.#jwks = this.#localJwks(keyset);
  }

  /** The token's claims when it is valid for `audience`, else undefined. Never throws for a bad token. */
  async verify(token: string, audience: string): Promise<AccessTokenClaims | undefined> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#jwks, {
        issuer: this.#issuer,
        audience,
        typ: 'at+jwt',
        algorithms: SIGNING_ALGS,
        requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
      }));
    } catch {
      return undefined;
    }
    const claims = payload as AccessTokenClaims;
    if (typeof claims.org_id !== 'string' || claims.sub !== claims.client_id) return undefined;
    const agent = await this.#agents.findActive(claims.sub);
    if (!agent || agent.orgId !== claims.org_id) return undefined;
    return claims;
  }
}
