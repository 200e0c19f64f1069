import type { Context, Next } from 'koa';
import { HttpError, ServiceUnavailable, Conflict } from './errors.ts';
import type { Logger } from '../lib/logger.ts';

// The one catch point of the management API: every error leaves as RFC 9457 problem+json.
// Unknown errors become a generic 500; database errors are mapped (unique violation → 409,
// connection lost → 503) so that no driver message reaches a client.

// Socket errors, PostgreSQL's connection_exception class (08…), admin shutdown (57P0…) and
// too_many_connections (53300).
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);

function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string; driverError?: unknown };
  if (e?.driverError) return isConnectionError(e.driverError);
  if (e?.code && CONNECTION_ERRORS.has(e.code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|not currently accepting connections|the database system is (starting up|shutting down|in recovery mode)/i.test(
    e?.message ?? '',
  );
}

export function toHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  const e = err as { code?: string; driverError?: { code?: string }; status?: number; expose?: boolean; message?: string };
  const pgCode = e?.driverError?.code ?? e?.code;
  if (pgCode === '23505') return new Conflict('already_exists', 'an object with the same unique value already exists');
  if (isConnectionError(err)) return new ServiceUnavailable();
  return undefined;
}

export function problemBody(err: HttpError, requestId: string) {
  return {
    type: `https://agent-idp.dev/problems/${err.code.replace(/_/g, '-')}`,
    title: err.title,
    status: err.status,
    detail: err.message,
    code: err.code,
    requestId,
    ...err.extensions,
    ...(err.errors ? { errors: err.errors } : {}),
  };
}

export function problemHandler(logger: Logger) {
  return async function handleProblems(ctx: Context, next: Next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new HttpError(404, 'not_found', 'Not Found', `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (caught) {
      let err = toHttpError(caught);
      if (!err) {
        logger.error('unhandled error', { requestId: ctx.state.requestId, err: caught });
        err = new HttpError(500, 'internal_error', 'Internal Server Error', 'an unexpected error occurred; quote the requestId when reporting it');
      } else if (err.status >= 500) {
        logger.error('request failed', { requestId: ctx.state.requestId, code: err.code, err: caught });
      }
      ctx.status = err.status;
      ctx.set(err.headers);
      ctx.type = 'application/problem+json';
      ctx.body = problemBody(err, ctx.state.requestId);
    }
  };
}
