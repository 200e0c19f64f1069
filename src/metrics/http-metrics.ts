import type { Context, Next } from 'koa';
import type { Metrics } from './metrics.ts';

/** The route label of a request that no route or fixed path answers: a raw path would let any caller create series. */
export const UNMATCHED_ROUTE = 'unmatched';

/** What @koa/router leaves on the context: every layer whose path matched, in the order they were registered. */
interface RouterLayer {
  path: string | RegExp;
  methods: string[];
}

/**
 * The template of the route that answered (`/api/v1/agents/:agentId`), as @koa/router matched
 * it: the last route layer for path and method, as the router picks it, else one for the path
 * alone (a 405). Read from the matched layers rather than ctx._matchedRoute, which names a
 * `use()` layer when a middleware of the chain (authentication) refused the request.
 */
function routeTemplate(matched: RouterLayer[] | undefined, method: string): string | undefined {
  if (!matched) return undefined;
  let pathOnly: string | undefined;
  for (let i = matched.length - 1; i >= 0; i--) {
    const layer = matched[i];
    if (layer.methods.length === 0) continue;
    if (layer.methods.includes(method)) return String(layer.path);
    pathOnly ??= String(layer.path);
  }
  return pathOnly;
}

/**
 * Outermost Koa middleware: the duration of every request by route template. `fixedPaths` are
 * paths answered outside the routers (oidc-provider's), each its own template.
 */
export function requestMetrics(metrics: Pick<Metrics, 'observeRequest'>, fixedPaths: readonly string[]) {
  const fixed = new Set(fixedPaths);
  return async function measureRequest(ctx: Context, next: Next) {
    const started = performance.now();
    // Before next(): the provider host rewrites the URL of the RFC 8414 metadata path.
    const path = ctx.path;
    let status: number | undefined;
    try {
      await next();
    } catch (err) {
      // Koa answers what escapes with the error's status, else 500.
      const errStatus = (err as { status?: unknown })?.status;
      status = typeof errStatus === 'number' && errStatus >= 400 && errStatus < 600 ? errStatus : 500;
      throw err;
    } finally {
      const route = routeTemplate(ctx.matched as RouterLayer[] | undefined, ctx.method) ?? (fixed.has(path) ? path : UNMATCHED_ROUTE);
      // res.statusCode: the provider writes its answer itself (ctx.respond = false), Koa's status is not set then.
      metrics.observeRequest(route, ctx.method, status ?? ctx.res.statusCode, (performance.now() - started) / 1000);
    }
  };
}
