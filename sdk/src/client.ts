import { clientAuthentication, type ClientAuthentication } from './client-auth.ts';
import { cachedDiscovery, type ServerMetadata } from './discovery.ts';
import { dpopKey, dpopProof, type DpopKey, type DpopOption } from './dpop.ts';
import { NetworkError, OAuthError } from './errors.ts';
import { defaultRetry, requestJson, type FetchLike, type RetryPolicy } from './http.ts';
import type { PrivateKeyInput } from './keys.ts';

// An agent's tokens: client_credentials with client_secret_basic or private_key_jwt, optionally
// DPoP-bound, cached per (scope, resource) and renewed before they expire, one request at a
// time per pair.

export interface AgentTokenClientOptions {
  /** The issuer (the server's PUBLIC_URL), exactly as its metadata says it. */
  issuer: string;
  clientId: string;
  /** client_secret_basic. Exactly one of clientSecret and privateKey. */
  clientSecret?: string;
  /** private_key_jwt (RFC 7523): a PKCS#8 PEM, a private JWK or a CryptoKey; each token request signs a new assertion. */
  privateKey?: PrivateKeyInput;
  /** The key credential's kid; default the key's RFC 7638 thumbprint, which is what agent-idp names it by. */
  kid?: string;
  /** The key's algorithm; default from the key (ES256, EdDSA, RS256; PS256 must be named). */
  alg?: string;
  /**
   * DPoP (RFC 9449): `true` makes an ES256 pair in memory; or a CryptoKeyPair, or
   * `{privateKey, publicJwk?}`. Tokens are then bound to that key; `fetch` and
   * `authorizationHeaders` add the proofs.
   */
  dpop?: DpopOption;
  /** The default `scope` of getToken (space-separated); without it, the agent's scopes. */
  scope?: string;
  /** The default `resource` (RFC 8707): the audience; without it, the agent's first audience. */
  resource?: string;
  /** Another fetch (a proxy agent, a test's counter). */
  fetch?: FetchLike;
  /** The clock (ms since the epoch) the cache reads. */
  now?: () => number;
  retry?: Partial<RetryPolicy>;
}

export interface TokenRequest {
  scope?: string;
  resource?: string;
}

export interface AccessToken {
  accessToken: string;
  /** `Bearer`, or `DPoP` for a token bound to the client's DPoP key. */
  tokenType: string;
  /** When the token expires (ms since the epoch, by the client's clock). */
  expiresAt: number;
  /** The scopes granted, space-separated, as the server answered them. */
  scope: string | undefined;
}

interface Cached {
  token: AccessToken;
  renewAt: number;
}

// Renew when 80 % of the life has passed or 60 s remain, whichever comes first.
const RENEW_AT_LIFE = 0.8;
const RENEW_BEFORE_MS = 60_000;

export class AgentTokenClient {
  readonly #options: AgentTokenClientOptions;
  readonly #fetch: FetchLike;
  readonly #now: () => number;
  readonly #retry: RetryPolicy;
  readonly #metadata: () => Promise<ServerMetadata>;
  readonly #cache = new Map<string, Cached>();
  readonly #inFlight = new Map<string, Promise<AccessToken>>();
  readonly #auth: ClientAuthentication;
  readonly #dpopKey: (() => Promise<DpopKey>) | undefined;
  // RFC 9449 §8: the last nonce each server (origin) asked for, sent in the next proofs to it.
  readonly #nonces = new Map<string, string>();

  constructor(options: AgentTokenClientOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#now = options.now ?? Date.now;
    this.#retry = { ...defaultRetry, ...options.retry };
    this.#metadata = cachedDiscovery(this.#fetch, options.issuer);
    this.#auth = clientAuthentication(options as Parameters<typeof clientAuthentication>[0], options.issuer, 'AgentTokenClient');
    const dpop = options.dpop;
    if (dpop) {
      let key: Promise<DpopKey> | undefined;
      this.#dpopKey = () => (key ??= dpopKey(dpop));
    }
  }

  /** The RFC 7638 thumbprint of the DPoP key (the `cnf.jkt` of the tokens bound to it); undefined without `dpop`. */
  async dpopThumbprint(): Promise<string | undefined> {
    return this.#dpopKey ? (await this.#dpopKey()).jkt : undefined;
  }

  /**
   * The headers that present a token to a resource server: `authorization: DPoP <token>` and a
   * `dpop` proof for this method and URL (with `ath`), or `authorization: Bearer <token>` for an
   * unbound one. A proof is good for one request: ask again for each.
   */
  async authorizationHeaders(method: string, url: string | URL, request: TokenRequest = {}): Promise<Record<string, string>> {
    return this.#headersFor(await this.getToken(request), method, url);
  }

  async #headersFor(token: AccessToken, method: string, url: string | URL): Promise<Record<string, string>> {
    if (token.tokenType.toLowerCase() !== 'dpop' || !this.#dpopKey) return { authorization: `Bearer ${token.accessToken}` };
    const proof = await this.#proof(method, url, token.accessToken);
    return { authorization: `DPoP ${token.accessToken}`, dpop: proof };
  }

  async #proof(method: string, url: string | URL, accessToken?: string): Promise<string> {
    return dpopProof(await this.#dpopKey!(), {
      method,
      url,
      accessToken,
      nonce: this.#nonces.get(new URL(url).origin),
      // The wall clock, not a test's: the server checks iat against its own.
      now: Math.floor(Date.now() / 1000),
    });
  }

  /**
   * A token for (scope, resource): the cached one while it is fresh, else a new one; concurrent
   * callers share one request. If renewing fails for want of a server (5xx, 429, network), the
   * cached token is returned while it has not expired.
   */
  async getToken(request: TokenRequest = {}): Promise<AccessToken> {
    const params = this.#params(request);
    const key = `${params.scope ?? ''} ${params.resource ?? ''}`;
    const cached = this.#cache.get(key);
    if (cached && this.#now() < cached.renewAt) return cached.token;
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = this.#requestToken(params)
        .then(
          (entry) => {
            this.#cache.set(key, entry);
            return entry.token;
          },
          (err: unknown) => {
            // Renewing early is what lets an agent ride out an outage: while the cached token has
            // not expired, it is still good. A refusal (4xx: a revoked credential) is not ridden out.
            const current = this.#cache.get(key);
            if (current && this.#now() < current.token.expiresAt && isUnavailable(err)) return current.token;
            throw err;
          },
        )
        .finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  /**
   * `fetch` with `Authorization: Bearer <token>`, or `DPoP <token>` and a new proof. On a 401 the
   * token is dropped and the request sent once more with a fresh one (the token may have been
   * revoked); a 401 asking for a DPoP nonce (RFC 9449 §9) is answered with the nonce and the same
   * token. A body sent twice must be replayable (a string, bytes, URLSearchParams, FormData; not a stream).
   */
  async fetch(url: string | URL, init: RequestInit = {}, request: TokenRequest = {}): Promise<Response> {
    const method = init.method ?? 'GET';
    const token = await this.getToken(request);
    const res = await this.#fetch(url, await this.#withToken(init, token, method, url));
    if (res.status !== 401) return res;
    await res.body?.cancel();
    if (this.#learnNonce(url, res)) return this.#fetch(url, await this.#withToken(init, token, method, url));
    this.#forget(request, token);
    return this.#fetch(url, await this.#withToken(init, await this.getToken(request), method, url));
  }

  async #withToken(init: RequestInit, token: AccessToken, method: string, url: string | URL): Promise<RequestInit> {
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(await this.#headersFor(token, method, url))) headers.set(name, value);
    return { ...init, headers };
  }

  /** RFC 9449 §9: a resource server's `use_dpop_nonce` challenge; true when it gave a nonce to retry with. */
  #learnNonce(url: string | URL, res: Response): boolean {
    const nonce = res.headers.get('dpop-nonce');
    if (!this.#dpopKey || !nonce || !/use_dpop_nonce/.test(res.headers.get('www-authenticate') ?? '')) return false;
    this.#nonces.set(new URL(url).origin, nonce);
    return true;
  }

  #params(request: TokenRequest): TokenRequest {
    return { scope: request.scope ?? this.#options.scope, resource: request.resource ?? this.#options.resource };
  }

  #forget(request: TokenRequest, token: AccessToken): void {
    const params = this.#params(request);
    const key = `${params.scope ?? ''} ${params.resource ?? ''}`;
    if (this.#cache.get(key)?.token === token) this.#cache.delete(key);
  }

  async #requestToken(params: TokenRequest): Promise<Cached> {
    const { token_endpoint } = await this.#metadata();
    // Each attempt is signed anew: an assertion's or a proof's jti is accepted once.
    const init = async (): Promise<RequestInit> => {
      const form = new URLSearchParams({ grant_type: 'client_credentials' });
      if (params.scope) form.set('scope', params.scope);
      if (params.resource) form.set('resource', params.resource);
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
      await this.#auth.apply(headers, form);
      if (this.#dpopKey) headers.dpop = await this.#proof('POST', token_endpoint);
      return { method: 'POST', headers, body: form.toString() };
    };
    const sentAt = this.#now();
    let answer: unknown;
    try {
      answer = await requestJson(this.#fetch, token_endpoint, init, this.#retry);
    } catch (err) {
      // RFC 9449 §8: a server that wants nonces says so once; the request is sent again with it.
      if (!(this.#dpopKey && err instanceof OAuthError && err.error === 'use_dpop_nonce' && err.dpopNonce)) throw err;
      this.#nonces.set(new URL(token_endpoint).origin, err.dpopNonce);
      answer = await requestJson(this.#fetch, token_endpoint, init, this.#retry);
    }
    const body = answer as { access_token?: unknown; token_type?: unknown; expires_in?: unknown; scope?: unknown };
    if (typeof body?.access_token !== 'string' || typeof body.token_type !== 'string' || typeof body.expires_in !== 'number') {
      throw new OAuthError('invalid_response', 200, 'the token response lacks access_token, token_type or expires_in');
    }
    // The life is counted from when the request left, so the cache never outlives the token.
    const lifeMs = body.expires_in * 1000;
    const token: AccessToken = {
      accessToken: body.access_token,
      tokenType: body.token_type,
      expiresAt: sentAt + lifeMs,
      scope: typeof body.scope === 'string' ? body.scope : undefined,
    };
    return { token, renewAt: Math.min(sentAt + lifeMs * RENEW_AT_LIFE, token.expiresAt - RENEW_BEFORE_MS) };
  }
}

const isUnavailable = (err: unknown) => err instanceof NetworkError || (err instanceof OAuthError && (err.status >= 500 || err.status === 429));
