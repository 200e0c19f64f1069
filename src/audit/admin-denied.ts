import type { Context, Next } from 'koa';
import { HttpError } from '../http/errors.ts';
import type { AuditWriter } from './audit.writer.ts';
import { adminDeniedEvent } from './events.ts';

/**
 * admin.denied for a refused management request: a token that does not open the API, or a
 * scope the caller lacks. A request without any credentials is not recorded.
 */
export function recordDenials(writer: Pick<AuditWriter, 'write'>) {
  return async function recordDenial(ctx: Context, next: Next) {
    try {
      await next();
    } catch (err) {
      if (err instanceof HttpError && (err.status === 403 || (err.status === 401 && ctx.get('authorization')))) {
        await writer.write(adminDeniedEvent(ctx, err.status, err.message));
      }
      throw err;
    }
  };
}
