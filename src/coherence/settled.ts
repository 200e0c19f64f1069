import type { Context, Next } from 'koa';
import type { Coherence } from './coherence.ts';

/** The settle step, as it appears in a route's chain (tests find it there by this name). */
export type SettleStep = ((ctx: Context, next: Next) => Promise<void>) & { settles: true };

/**
 * The settle step of a writing route: once the handler has answered with success, wait until
 * every instance has taken the change in (Coherence.settle) before the answer leaves, so that a
 * change acknowledged by one instance holds on all of them. A failed request changed nothing; a
 * handler that knows it changed nothing says so with `ctx.state.changed = false`.
 */
export function settledBy(coherence: Pick<Coherence, 'settle'>): SettleStep {
  const step = async function settled(ctx: Context, next: Next) {
    await next();
    if (ctx.status < 400 && ctx.state.changed !== false) await coherence.settle();
  };
  return Object.assign(step, { settles: true as const });
}
