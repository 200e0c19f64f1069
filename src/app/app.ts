import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from '../lib/logger.ts';
import type { ProviderHost } from '../oauth/provider-host.ts';
import type { AccessTokenVerifier } from '../oauth/verifier.ts';
import { INTROSPECTION_PATH, MANAGEMENT_AUDIENCE_PATH, REVOCATION_PATH } from '../oauth/paths.ts';
import { oauthErrorHandler } from '../oauth/errors.ts';
import { introspectionEndpoint } from '../oauth/endpoints/introspect.ts';
import { revocationEndpoint } from '../oauth/endpoints/revoke.ts';
import { settledBy } from '../coherence/settled.ts';
import { requestContext } from '../http/request-context.ts';
import { problemHandler } from '../http/problem.ts';
import { jsonBody } from '../http/body.ts';
import { authenticate } from '../http/bearer.ts';
import { NotFound } from '../http/errors.ts';
import type { Services } from './services.ts';
import { orgsRoutes } from '../orgs/orgs.routes.ts';
import { agentsRoutes } from '../agents/agents.routes.ts';
import { credentialsRoutes } from '../credentials/credentials.routes.ts';
import { keysRoutes } from '../keys/keys.routes.ts';
import { presentPublicKey } from '../keys/keys.presenter.ts';
import { auditRoutes } from '../audit/audit.routes.ts';
import { recordDenials } from '../audit/admin-denied.ts';
import { isUuid } from '../lib/ids.ts';
import type { Coherence } from '../coherence/coherence.ts';

const KID = /^[A-Za-z0-9_-]{1,128}$/;

/** Routes of /api/v1 that need no token: the public half of a signing key. */
export function publicRouter({ services, logger }: AppDeps): Router {
  const router = new Router({ prefix: MANAGEMENT_AUDIENCE_PATH });
  router.use(problemHandler(logger));
  router.get('/keys/public/:kid', async (ctx) => {
    if (!KID.test(ctx.params.kid)) throw new NotFound('key not found');
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = presentPublicKey(await services.keys.published(ctx.params.kid));
  });
  return router;
}

export interface AppDeps {
  services: Services;
  providerHost: ProviderHost;
  verifier: AccessTokenVerifier;
  rootOrgId: () => string;
  logger: Logger;
  coherence: Coherence;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A change answered by the management API holds on every instance: after a request that may
 * have changed agents, credentials or keys, wait until every instance has taken it in
 * (Coherence.settle) before answering. A failed request changed nothing.
 */
function settleChanges(coherence: Coherence) {
  return async function settle(ctx: Koa.Context, next: Koa.Next) {
    await next();
    if (!SAFE_METHODS.has(ctx.method) && ctx.status < 400) await coherence.settle();
  };
}

/** The management API's router: every route behind bearer authentication. */
export function managementRouter({ services, verifier, rootOrgId, logger, coherence }: AppDeps): Router {
  const router = new Router({ prefix: MANAGEMENT_AUDIENCE_PATH });
  router.use(problemHandler(logger));
  router.use(recordDenials(services.auditWriter));
  router.use(authenticate(verifier, services.config.publicUrl + MANAGEMENT_AUDIENCE_PATH, rootOrgId));
  router.use(settleChanges(coherence));
  router.use(jsonBody());
  router.param('kid', (kid, _ctx, next) => {
    if (!KID.test(kid)) throw new NotFound('key not found');
    return next();
  });
  for (const param of ['agentId', 'credentialId']) {
    router.param(param, (id, _ctx, next) => {
      // Ids are UUIDs; anything else names nothing.
      if (!isUuid(id)) throw new NotFound(`${param.replace('Id', '')} ${id.slice(0, 64)} not found`);
      return next();
    });
  }
  orgsRoutes(router, services);
  agentsRoutes(router, services);
  credentialsRoutes(router, services);
  keysRoutes(router, services);
  auditRoutes(router, services.audit);
  return router;
}

/** Our RFC 7662 and RFC 7009 endpoints (oidc-provider serves /token, discovery and the JWKS). */
function oauthRouter({ services, verifier, logger, coherence }: AppDeps): Router {
  const router = new Router();
  router.use(oauthErrorHandler(logger));
  const client = { clients: services.clients, credentials: services.credentials, auditWriter: services.auditWriter };
  router.post(INTROSPECTION_PATH, introspectionEndpoint({ ...client, verifier }));
  router.post(REVOCATION_PATH, settledBy(coherence), revocationEndpoint({ ...client, verifier, revocations: services.revocations }));
  return router;
}

/** One Koa app: the management API and oidc-provider side by side. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.silent = true;
  const router = managementRouter(deps);
  const oauth = oauthRouter(deps);
  app.use(requestContext(deps.logger));
  app.use(deps.providerHost.middleware());
  app.use(oauth.routes());
  app.use(oauth.allowedMethods({ throw: false }));
  app.use(publicRouter(deps).routes());
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: false }));
  // Whatever is neither an OAuth endpoint nor a management route.
  app.use(problemHandler(deps.logger));
  return app;
}
