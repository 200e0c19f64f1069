import Koa from 'koa';
import type Router from '@koa/router';
import type { Logger } from '../lib/logger.ts';
import { requestContext } from '../http/request-context.ts';
import { problemHandler } from '../http/problem.ts';
import type { ProviderHost } from '../oauth/provider-host.ts';

export interface AppRouters {
  oauth: Router;
  public: Router;
  management: Router<never> | Router;
}

/** The order of the middleware of the one Koa app: the management API and oidc-provider side by side. */
export function createApp(providerHost: ProviderHost, routers: AppRouters, logger: Logger, options: { trustProxy?: number } = {}): Koa {
  const app = new Koa();
  app.silent = true;
  // TRUST_PROXY hops: ctx.ip is the address the outermost trusted proxy saw (the n-th from the
  // right of X-Forwarded-For); with 0 the header is never read.
  const hops = options.trustProxy ?? 0;
  app.proxy = hops > 0;
  app.maxIpsCount = hops;
  app.use(requestContext(logger));
  // /token, discovery and the JWKS: the current Provider answers them.
  app.use(providerHost.middleware());
  app.use(routers.oauth.routes());
  app.use(routers.oauth.allowedMethods({ throw: false }));
  app.use(routers.public.routes());
  app.use(routers.management.routes() as Koa.Middleware);
  app.use(routers.management.allowedMethods({ throw: false }) as Koa.Middleware);
  // Whatever is neither an OAuth endpoint nor a management route.
  app.use(problemHandler(logger));
  return app;
}
