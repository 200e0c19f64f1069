import type { Context, Next } from 'koa';
import type { Logger } from '../lib/logger.ts';
import { toHttpError } from '../http/problem.ts';
import { UNAVAILABLE } from '../http/errors.ts';

/** An RFC 6749 §5.2 error of our own OAuth endpoints: `{error, error_description}`. */
export class OAuthError extends Error {
  readonly status: number;
  readonly error: string;
  readonly headers: Record<string, string>;

  constructor(status: number, error: string, description: string, headers: Record<string, string> = {}) {
    super(description);
    this.status = status;
    this.error = error;
    this.headers = headers;
  }
}

/** 429 at an OAuth endpoint, RFC 6749-style as Auth0 answers it, with Retry-After in seconds. */
export function tooManyRequests(retryAfterSeconds: number, description: string): OAuthError {
  return new OAuthError(429, 'too_many_requests', description, { 'Retry-After': String(retryAfterSeconds) });
}

/**
 * The database is out of reach: say so, and that trying again is right. RFC 6749 §5.2 has no
 * such code for the token endpoint; temporarily_unavailable is §4.1.2.1's.
 */
export function answerUnavailable(ctx: Pick<Context, 'set'> & { status: number; body: unknown }): void {
  ctx.status = 503;
  ctx.set('Retry-After', UNAVAILABLE.retryAfterSeconds);
  ctx.body = { error: 'temporarily_unavailable', error_description: UNAVAILABLE.detail };
}

/** The catch point of our OAuth routes: RFC 6749 JSON errors, never a stack. */
export function oauthErrorHandler(logger: Logger) {
  return async function handleOAuthErrors(ctx: Context, next: Next) {
    try {
      await next();
    } catch (caught) {
      ctx.set('Cache-Control', 'no-store');
      if (!(caught instanceof OAuthError) && toHttpError(caught)?.status === 503) {
        answerUnavailable(ctx);
        return;
      }
      let err: OAuthError;
      if (caught instanceof OAuthError) {
        err = caught;
      } else {
        logger.error('oauth endpoint failed', { requestId: ctx.state.requestId, err: caught });
        err = new OAuthError(500, 'server_error', 'an unexpected error occurred');
      }
      ctx.status = err.status;
      ctx.set(err.headers);
      if (err.error === 'invalid_client') ctx.set('WWW-Authenticate', 'Basic realm="agent-idp"');
      ctx.body = { error: err.error, error_description: err.message };
    }
  };
}
