import { cachedDiscovery, type ServerMetadata } from './discovery.ts';
import { NetworkError, OAuthError } from './errors.ts';
import { basicAuth, defaultRetry, requestJson, type FetchLike, type RetryPolicy } from './http.ts';

// An agent's tokens: client_credentials with client_secret_basic, cached per (scope, resource)
// and renewed before they expire, one request at a time per pair.

export interface AgentTokenClientOptions {
  /** The issuer (the server's PUBLIC_URL), exactly as its metadata says it. */
  issuer: string;
  clientId: string;
  clientSecret: string;
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
  /** `Bearer`. */
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

  constructor(options: AgentTokenClientOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#now = options.now ?? Date.now;
    this.#retry = { ...defaultRetry, ...options.retry };
    this.#metadata = cachedDiscovery(this.#fetch, options.issuer);
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
   * `fetch` with `Authorization: Bearer <token>`. On a 401 the token is dropped and the request
   * sent once more with a fresh one (the token may have been revoked). A body sent twice must be
   * replayable (a string, bytes, URLSearchParams, FormData; not a stream).
   */
  async fetch(url: string | URL, init: RequestInit = {}, request: TokenRequest = {}): Promise<Response> {
    const token = await this.getToken(request);
    const res = await this.#fetch(url, withToken(init, token));
    if (res.status !== 401) return res;
    this.#forget(request, token);
    await res.body?.cancel();
    return this.#fetch(url, withToken(init, await this.getToken(request)));
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
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (params.scope) form.set('scope', params.scope);
    if (params.resource) form.set('resource', params.resource);
    const sentAt = this.#now();
    const body = (await requestJson(
      this.#fetch,
      token_endpoint,
      {
        method: 'POST',
        headers: {
          authorization: basicAuth(this.#options.clientId, this.#options.clientSecret),
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: form.toString(),
      },
      this.#retry,
    )) as { access_token?: unknown; token_type?: unknown; expires_in?: unknown; scope?: unknown };
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

function withToken(init: RequestInit, token: AccessToken): RequestInit {
  const headers = new Headers(init.headers);
  // RFC 6750 §2.1 spells the scheme `Bearer`; the server answers token_type `Bearer` too.
  headers.set('authorization', `Bearer ${token.accessToken}`);
  return { ...init, headers };
}
