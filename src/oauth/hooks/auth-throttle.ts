import type { Context, Next } from 'koa';
import { errors } from 'oidc-provider';
import type { Logger } from '../../lib/logger.ts';
import type { AuthThrottle } from '../../throttling/auth-throttle.ts';
import { clientAuthNotes } from '../client-auth/note.ts';
import { TOKEN_PATH } from '../paths.ts';

// Brute-force throttling at /token (src/throttling/auth-throttle.ts). An address that is
// refused is answered here, before oidc-provider reads the body; a refused (client id, address)
// pair is refused by the adapter, which is the first to know the client id and would otherwise
// read the agent; a failed authentication of a client id that was looked up is counted once
// the answer is known.

export const throttledDescription = (seconds: number) => `too many failed client authentications; try again in ${seconds} seconds`;

/** oidc-provider's error for a 429: its error handler renders `{error, error_description}` with our status. */
export class TooManyRequests extends errors.OIDCProviderError {
  constructor(description: string) {
    super(429, 'too_many_requests');
    this.error_description = description;
  }
}

/** Provider middleware, inside the client-auth note. */
export function throttleTokenAuth(throttle: AuthThrottle, logger: Logger) {
  return async function throttleClientAuth(ctx: Context, next: Next) {
    if (ctx.method !== 'POST' || ctx.path !== TOKEN_PATH) return next();
    const ip = ctx.ip;
    const wait = throttle.refusedIp(ip, 'token');
    if (wait !== undefined) {
      ctx.status = 429;
      ctx.set('Retry-After', String(wait));
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'too_many_requests', error_description: throttledDescription(wait) };
      return;
    }
    await next();
    const note = clientAuthNotes.getStore();
    if (ctx.status !== 401 || !note?.lookedUp) return;
    try {
      await throttle.failed(ctx, note.lookedUp, ip);
    } catch (err) {
      // The 401 stands; only its bookkeeping failed.
      logger.error('could not record a throttled period', { requestId: ctx.response.get('x-request-id'), err });
    }
  };
}
