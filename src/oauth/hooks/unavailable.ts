import type { Context, Next } from 'koa';
import { toHttpError } from '../../http/problem.ts';
import { answerUnavailable } from '../errors.ts';

/** Provider middleware, outermost: a 500 caused by a database out of reach answers 503 with Retry-After. */
export function unavailableAnswers() {
  return async function answerOutagesWith503(ctx: Context, next: Next) {
    await next();
    if (ctx.status === 500 && toHttpError(ctx.state.serverError)?.status === 503) answerUnavailable(ctx);
  };
}
