import type { Context } from 'koa';
import { toHttpError } from '../../http/problem.ts';
import { answerUnavailable } from '../errors.ts';

/** After any route, last: a 500 caused by a database out of reach answers 503 with Retry-After. */
export function answerOutage(ctx: Context): void {
  if (ctx.status === 500 && toHttpError(ctx.state.serverError)?.status === 503) answerUnavailable(ctx);
}
