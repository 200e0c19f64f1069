import Koa from 'koa';
import type Router from '@koa/router';
import type { Logger } from '../lib/logger.ts';
import { requestContext } from '../http/request-context.ts';
import { problemHandler } from '../http/problem.ts';
import { trustProxy } from '../http/client-ip.ts';
import type { ProviderHost } from '../oauth/provider-host.ts';
import { AUTHORIZATION_SERVER_METADATA_PATH, DISCOVERY_PATH, JWKS_PATH, TOKEN_PATH } from '../oauth/paths.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { requestMetrics } from '../metrics/http-metrics.ts';

export interface AppRouters {
  health: Router;
  oauth: Router;
  public: Router;
  /** agent-idp's own MCP server and its protected resource metadata. */
  mcp: Router;
  /** The admin console's static files at /console, with their own strict headers. */
  console: Router;
  management: Router<never> | Router;
}

/** The order of the middleware of the one Koa app: the management API and oidc-provider side by side. */
export function createApp(providerHost: ProviderHost, routers: AppRouters, logger: Logger, options: { metrics: Metrics; trustProxy: number }): Koa {
  const app = new Koa();
  app.silent = true;
  trustProxy(app, options.trustProxy);
  // Outermost, to time all of it. The provider's paths are matched by no router: each is its own route label.
  app.use(requestMetrics(options.metrics, [TOKEN_PATH, DISCOVERY_PATH, AUTHORIZATION_SERVER_METADATA_PATH, JWKS_PATH]));
  app.use(requestContext(logger));
  // Before everything else: probes come often and ask for little.
  app.use(routers.health.routes());
  // Static files, matched by path only: they set their CSP on their own answers, no API route's.
  app.use(routers.console.routes());
  // /token, discovery and the JWKS: the current Provider answers them.
  app.use(providerHost.middleware());
  app.use(routers.oauth.routes());
  app.use(routers.oauth.allowedMethods({ throw: false }));
  app.use(routers.public.routes());
  app.use(routers.mcp.routes());
  app.use(routers.mcp.allowedMethods({ throw: false }));
  app.use(routers.management.routes() as Koa.Middleware);
  app.use(routers.management.allowedMethods({ throw: false }) as Koa.Middleware);
  // Whatever is neither an OAuth endpoint nor a management route.
  app.use(problemHandler(logger));
  return app;
}
