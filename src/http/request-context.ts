import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../lib/logger.ts';

/** A caller's X-Request-Id that is echoed back; any other gets a new id. */
export const INCOMING_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** Gives every request an id (X-Request-Id, echoed when the caller sent a sane one) and logs it once done. */
export function requestContext(logger: Logger) {
  // One debug line per request; below that level, no timer and no listener per request.
  const logRequests = logger.enabled?.('debug') ?? true;
  return async function tagRequest(ctx: Context, next: Next) {
    const incoming = ctx.get('x-request-id');
    const requestId = INCOMING_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    if (logRequests) {
      const started = process.hrtime.bigint();
      ctx.res.once('finish', () => {
        logger.debug('request', {
          requestId,
          method: ctx.method,
          path: ctx.path,
          status: ctx.res.statusCode,
          ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        });
      });
    }
    await next();
  };
}
