import type { IncomingMessage, ServerResponse } from 'node:http';
import Koa from 'koa';
import type Router from '@koa/router';
import type { Logger } from '../lib/logger.ts';
import { randomUUID } from 'node:crypto';
import { INCOMING_REQUEST_ID, requestContext } from '../http/request-context.ts';
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

/**
 * The HTTP server's request listener. Two lanes skip the Koa app, for the requests that come by
 * the thousand: the JWKS, from its fixed bytes (ProviderHost.jwks), and /token, handed to the
 * current Provider as the Koa app would hand it (ProviderHost.middleware) but without a Koa
 * context of ours around oidc-provider's own. Both get what every answer gets from the app's
 * outer middleware: an X-Request-Id, the request-duration metric, the debug request log.
 * Everything else goes through the Koa app.
 */
export function createHandler(app: Koa, providerHost: ProviderHost, logger: Logger, metrics: Pick<Metrics, 'observeRequest'>) {
  const koa = app.callback();
  const logRequests = logger.enabled?.('debug') ?? true;
  const done = (req: IncomingMessage, res: ServerResponse, route: string, started: number) => {
    const ms = performance.now() - started;
    metrics.observeRequest(route, req.method!, res.statusCode, ms / 1000);
    if (logRequests) logger.debug('request', { requestId: res.getHeader('x-request-id'), method: req.method, path: route, status: res.statusCode, ms });
  };
  return function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '';
    const route =
      url.startsWith(TOKEN_PATH) && isPath(url, TOKEN_PATH) ? TOKEN_PATH : url.startsWith(JWKS_PATH) && isPath(url, JWKS_PATH) ? JWKS_PATH : undefined;
    if (route === TOKEN_PATH) {
      const started = performance.now();
      tagRequest(req, res);
      return providerHost.handle(req, res).finally(() => done(req, res, TOKEN_PATH, started));
    }
    if (route === JWKS_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      const started = performance.now();
      tagRequest(req, res);
      try {
        providerHost.jwks.answer(req, res);
      } catch (err) {
        logger.error('could not answer the JWKS', { err });
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      }
      done(req, res, JWKS_PATH, started);
      return Promise.resolve();
    }
    return koa(req, res) as unknown as Promise<void>;
  };
}

/** `url` is `path`, with or without a query. */
function isPath(url: string, path: string): boolean {
  return url.length === path.length || url[path.length] === '?';
}

/** X-Request-Id as requestContext gives it: the caller's when sane, else a new one. */
function tagRequest(req: IncomingMessage, res: ServerResponse): void {
  const incoming = req.headers['x-request-id'];
  res.setHeader('X-Request-Id', typeof incoming === 'string' && INCOMING_REQUEST_ID.test(incoming) ? incoming : randomUUID());
}
