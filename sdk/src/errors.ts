// Every error the SDK throws on purpose is one of these, with a stable `code` to branch on;
// real classes, so `instanceof` works.

export class AgentIdpError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The authorization server answered an OAuth error (RFC 6749 §5.2), or kept failing after the retries. */
export class OAuthError extends AgentIdpError {
  /** The OAuth `error` (`invalid_client`, `invalid_scope`, ...); also `code`. */
  readonly error: string;
  readonly errorDescription: string | undefined;
  /** The HTTP status of the answer. */
  readonly status: number;
  /** The `DPoP-Nonce` the server sent with a `use_dpop_nonce` error (RFC 9449 §8). */
  readonly dpopNonce: string | undefined;

  constructor(error: string, status: number, errorDescription?: string, options?: { dpopNonce?: string }) {
    super(error, errorDescription ? `${error}: ${errorDescription}` : `${error} (HTTP ${status})`);
    this.error = error;
    this.status = status;
    this.errorDescription = errorDescription;
    this.dpopNonce = options?.dpopNonce;
  }
}

/** The server could not be reached (after the retries): the `cause` is what `fetch` threw. */
export class NetworkError extends AgentIdpError {
  constructor(url: string, cause: unknown) {
    super('network_error', `cannot reach ${url}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The issuer's metadata (RFC 8414) is missing, malformed or names another issuer. */
export class DiscoveryError extends AgentIdpError {
  constructor(message: string) {
    super('discovery_failed', message);
  }
}

export type TokenErrorCode = 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof';

/**
 * An access token a resource server must refuse; `code` is the error to answer with (RFC 6750
 * §3.1, RFC 9449 §7.1).
 */
export class TokenError extends AgentIdpError {
  declare readonly code: TokenErrorCode;
  /** For `insufficient_scope`: the scopes the request needs. */
  readonly requiredScopes: string[] | undefined;
  /** The challenge is a DPoP one (RFC 9449 §7.1): the token is DPoP-bound, or came as `DPoP`. */
  readonly dpop: boolean;

  constructor(code: TokenErrorCode, message: string, options?: { cause?: unknown; requiredScopes?: string[]; dpop?: boolean }) {
    super(code, message, options);
    this.requiredScopes = options?.requiredScopes;
    this.dpop = options?.dpop ?? code === 'invalid_dpop_proof';
  }
}
