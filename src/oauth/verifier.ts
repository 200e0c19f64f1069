import { createHash } from 'node:crypto';
import { SIGNING_ALGS } from '../../config/index.ts';
import { Lru } from '../lib/lru.ts';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Keyset } from '../keys/key-ring.ts';
import { publicJwkOf } from '../keys/keys.service.ts';
import type { ClientAgent } from '../agents/agent.entity.ts';
import type { ChainToken, ClientStore } from './client-store.ts';
import { isUuid } from '../lib/ids.ts';

// Decides whether an access token of this IdP is good: the one function behind introspection
// and the management API's bearer check. A token is good only if its signature verifies with
// one of our published keys (a revoked key is not published), it is an RFC 9068 access token
// (typ at+jwt) from our issuer, it has not expired, its jti is not revoked and its agent is
// active. The last three come from ClientStore.tokenState on every call (this instance's memory,
// kept strictly in step by src/coherence, or the database), so a revocation or a suspension made
// through any instance holds on every instance at once.
//
// An exchanged token (RFC 8693; grants/token-exchange.ts) says who it is for (`sub`) and who acts
// (`act`, nested for each earlier actor, §4.1), and lists the tokens it was exchanged from
// (`delegation`, the subject's own token first). It is good only while every one of those
// tokens and every agent of the chain is: revocation and suspension cascade down the chain.

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
  /** RFC 8693 §4.1: the actor (= client_id), and inside it the actor before it, and so on. */
  act?: ActClaim;
  /** An exchanged token: the tokens up its chain, the subject agent's own token first. */
  delegation?: ChainToken[];
}

export interface ActClaim {
  sub: string;
  act?: ActClaim;
}

export interface VerifiedToken {
  claims: AccessTokenClaims;
  /** The token's scopes that its agent still holds now. */
  scopes: string[];
  /** The key that signed it. */
  kid: string;
  /** Its subject agent (`sub`) as read for this check: active, in the token's org. */
  agent: ClientAgent;
}

/** The verified claims, the key that signed them, and for an exchanged token its chain: the agents (subject first) and the tokens. */
type DecodedToken = AccessTokenClaims & { kid: string; chain?: { agents: string[]; tokens: ChainToken[] } };

/** The actors of an `act` claim, the latest (the token's client) first; undefined when it is malformed. */
function actorsOf(act: unknown): string[] | undefined {
  const actors: string[] = [];
  let at = act as ActClaim | undefined;
  while (at !== undefined) {
    if (typeof at !== 'object' || at === null || typeof at.sub !== 'string' || !isUuid(at.sub)) return undefined;
    actors.push(at.sub);
    at = at.act;
  }
  return actors;
}

/** An exchanged token's chain, when its act and delegation claims agree; undefined when they do not. */
function chainOf(claims: AccessTokenClaims): DecodedToken['chain'] {
  const actors = actorsOf(claims.act);
  const tokens = claims.delegation;
  if (!actors || actors[0] !== claims.client_id || !Array.isArray(tokens) || tokens.length !== actors.length) return undefined;
  if (!tokens.every((t) => typeof t?.jti === 'string' && typeof t?.kid === 'string')) return undefined;
  return { agents: [claims.sub, ...actors.reverse()], tokens: tokens.map(({ jti, kid }) => ({ jti, kid })) };
}

/** How many verified tokens are remembered (about 0.5 kB each). */
const VERIFIED_MEMORY_ENTRIES = 20_000;

function audienceIncludes(aud: string | string[], audience: string): boolean {
  return Array.isArray(aud) ? aud.includes(audience) : aud === audience;
}

export class AccessTokenVerifier {
  readonly #issuer: string;
  readonly #clients: Pick<ClientStore, 'tokenState' | 'chainState'>;
  #jwks: ReturnType<typeof createLocalJWKSet>;
  /**
   * Tokens whose signature and claims verified, by SHA-256 of the token: a resource server
   * introspects the same token again and again, and a signature that verified once verifies
   * forever. Expiry is checked on every use; everything that can change (revoked jti, revoked
   * key, agent state) is checked by state() every time. Forgotten when the key set changes.
   */
  readonly #verified = new Lru<string, DecodedToken>(VERIFIED_MEMORY_ENTRIES);

  constructor(issuer: string, keyset: Keyset, clients: Pick<ClientStore, 'tokenState' | 'chainState'>) {
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
      if (typeof claims.org_id !== 'string' || typeof claims.jti !== 'string') return undefined;
      if (claims.act === undefined && claims.delegation === undefined) {
        // A token of the agent itself (client_credentials).
        return claims.sub === claims.client_id ? { ...claims, kid: protectedHeader.kid! } : undefined;
      }
      const chain = chainOf(claims);
      return chain ? { ...claims, kid: protectedHeader.kid!, chain } : undefined;
    } catch {
      return undefined;
    }
  }

  /** A token that is active now (for `audience`, when given), else undefined. */
  async verify(token: string, audience?: string): Promise<VerifiedToken | undefined> {
    const claims = await this.decode(token, audience);
    if (!claims) return undefined;
    const { kid, chain, ...rest } = claims;
    let agent: ClientAgent;
    if (!chain) {
      const state = await this.#clients.tokenState(claims.sub, claims.jti, kid);
      if (!state || state.revoked || state.keyRevoked || state.agentStatus !== 'active' || state.agentOrgId !== claims.org_id) return undefined;
      agent = state.agent;
    } else {
      const state = await this.#clients.chainState(chain.agents, [...chain.tokens, { jti: claims.jti, kid }]);
      if (state.revoked || state.keyRevoked) return undefined;
      for (const id of chain.agents) {
        const member = state.agents.get(id);
        if (!member || member.status !== 'active' || member.orgId !== claims.org_id) return undefined;
      }
      agent = state.agents.get(claims.sub)!;
    }
    // The subject's rights: scopes its agent still holds.
    const held = new Set(agent.scopes);
    const scopes = (claims.scope ?? '').split(' ').filter((s) => s && held.has(s));
    return { claims: rest as AccessTokenClaims, scopes, kid, agent };
  }
}
