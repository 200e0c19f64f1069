import type { Context, Next } from 'koa';
import type { Logger } from '../lib/logger.ts';
import { toHttpError } from '../http/problem.ts';

/** An RFC 6749 §5.2 error of our own OAuth endpoints: `{error, error_description}`. */
export class OAuthError extends Error {
  readonly status: number;
  readonly error: string;

  constructor(status: number, error: string, description: string) {
    super(description);
    this.status = status;
    this.error = error;
  }
}

/** The catch point of our OAuth routes: RFC 6749 JSON errors, never a stack. */
export function oauthErrorHandler(logger: Logger) {
  return async function handleOAuthErrors(ctx: Context, next: Next) {
    try {
      await next();
    } catch (caught) {
      let err: OAuthError;
      if (caught instanceof OAuthError) {
        err = caught;
      } else if (toHttpError(caught)?.status === 503) {
        err = new OAuthError(503, 'temporarily_unavailable', 'the service is temporarily unavailable; try again shortly');
        ctx.set('Retry-After', '1');
      } else {
        logger.error('oauth endpoint failed', { requestId: ctx.state.requestId, err: caught });
        err = new OAuthError(500, 'server_error', 'an unexpected error occurred');
      }
      ctx.status = err.status;
      if (err.error === 'invalid_client') ctx.set('WWW-Authenticate', 'Basic realm="agent-idp"');
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: err.error, error_description: err.message };
    }
  };
}
