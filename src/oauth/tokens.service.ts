import type { ClientAgent } from '../agents/agent.entity.ts';
import type { AccessTokenVerifier } from './verifier.ts';
import type { TokensRepository } from './tokens.repository.ts';
import { mayIntrospect } from '../policies/visibility.ts';

export type Introspection =
  | { active: false }
  | {
      active: true;
      iss: string;
      sub: string;
      client_id: string;
      aud: string | string[];
      scope?: string;
      exp: number;
      iat: number;
      jti: string;
      token_type: 'Bearer';
      org_id: string;
    };

const INACTIVE: Introspection = { active: false };

export class TokensService {
  readonly #verifier: AccessTokenVerifier;
  readonly #repo: TokensRepository;

  constructor(verifier: AccessTokenVerifier, repo: TokensRepository) {
    this.#verifier = verifier;
    this.#repo = repo;
  }

  /**
   * RFC 7662. Who may see a token: its own client, or a resource server of the same org that
   * holds tokens:introspect. Anyone else learns only `active: false`.
   */
  async introspect(caller: ClientAgent, token: string): Promise<Introspection> {
    const verified = await this.#verifier.verify(token);
    if (!verified) return INACTIVE;
    const { claims } = verified;
    if (!mayIntrospect(caller, claims)) return INACTIVE;
    return {
      active: true,
      iss: claims.iss,
      sub: claims.sub,
      client_id: claims.client_id,
      aud: claims.aud,
      ...(claims.scope ? { scope: claims.scope } : {}),
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      token_type: 'Bearer',
      org_id: claims.org_id,
    };
  }

  /**
   * RFC 7009: a client revokes its own tokens. An invalid, expired or foreign token changes
   * nothing and is not an error (§2.2). Returns whether a revocation was recorded.
   */
  async revoke(caller: ClientAgent, token: string): Promise<boolean> {
    const claims = await this.#verifier.decode(token);
    if (!claims || claims.client_id !== caller.id || claims.exp * 1000 <= Date.now()) return false;
    await this.#repo.revoke(claims.jti, claims.sub, claims.org_id, new Date(claims.exp * 1000));
    return true;
  }
}
