import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Container } from './container.ts';
import { problemHandler } from '../http/problem.ts';
import { jsonBody } from '../http/body.ts';
import { authenticate } from '../http/bearer.ts';
import { NotFound, Unauthorized } from '../http/errors.ts';
import type { ManagementState } from '../http/state.ts';
import { isUuid } from '../lib/ids.ts';
import type { ScopeCheck } from '../policies/scopes.ts';
import type { SettleStep } from '../coherence/settled.ts';
import { recordDenials } from '../audit/admin-denied.ts';
import { auditRoutes } from '../audit/audit.routes.ts';
import { usageRoutes } from '../usage/usage.routes.ts';
import { webhooksRoutes } from '../webhooks/webhooks.routes.ts';
import { agentsRoutes } from '../agents/agents.routes.ts';
import { agentJwksRoutes, credentialsRoutes } from '../credentials/credentials.routes.ts';
import { orgsRoutes } from '../orgs/orgs.routes.ts';
import { KID, keysRoutes, publicKeyRoutes } from '../keys/keys.routes.ts';
import { oauthErrorHandler } from '../oauth/errors.ts';
import { introspectionEndpoint } from '../oauth/endpoints/introspect.ts';
import { revocationEndpoint } from '../oauth/endpoints/revoke.ts';
import { INTROSPECTION_PATH, MANAGEMENT_AUDIENCE_PATH, REVOCATION_PATH, managementAudience } from '../oauth/paths.ts';
import type { AccessTokenVerifier } from '../oauth/verifier.ts';
import { dpopProofChecker } from '../oauth/dpop-proof.ts';
import { TokenBuckets, rateLimitPerToken } from '../throttling/rate-limit.ts';
import { mcpRouter } from '../mcp/mcp.routes.ts';
import { dispatchTo } from '../mcp/dispatch.ts';

// Which routes exist and what each one's chain is. Each domain adds its own routes and gets
// only the services it calls.

/** The management API: every route behind bearer authentication, answering problem+json. */
export function managementRouter(c: Container, verifier: AccessTokenVerifier, rootOrgId: () => string): Router<ManagementState> {
  const router = new Router<ManagementState>({ prefix: MANAGEMENT_AUDIENCE_PATH });
  router.use(problemHandler(c.logger));
  router.use(recordDenials(c.auditWriter));
  router.use(authenticate(verifier, managementAudience(c.config.publicUrl), rootOrgId, dpopProofChecker(c.config.publicUrl, c.repositories.replays)));
  router.use(
    rateLimitPerToken(new TokenBuckets(c.config.managementRateLimit, c.config.managementRateBurst, c.clock), () => c.metrics.rateLimited('management')),
  );
  router.use(jsonBody());
  managementRoutes(router, c);
  return router;
}

/**
 * The same management routes for the tools of /mcp (src/mcp/): each tool is dispatched to its
 * route, so the scope check, org isolation, validation, settle step, audit event and presenter
 * are the route's own. The /mcp endpoint has verified its token (audience `<issuer>/mcp`) and
 * rate-limited it already, and hands the actor and the arguments over on ctx.state; a context
 * without an actor is refused here as at /api/v1.
 */
export function mcpOperationsRouter(c: Container): Router<ManagementState> {
  const router = new Router<ManagementState>({ prefix: MANAGEMENT_AUDIENCE_PATH });
  router.use(problemHandler(c.logger));
  router.use(recordDenials(c.auditWriter));
  router.use((ctx, next) => {
    if (!ctx.state.actor) throw new Unauthorized();
    return next();
  });
  managementRoutes(router, c);
  return router;
}

/** Which management routes exist and their chains, after whatever authenticated the actor. */
function managementRoutes(router: Router<ManagementState>, c: Container): void {
  router.param('kid', (kid, _ctx, next) => {
    if (!KID.test(kid)) throw new NotFound('key not found');
    return next();
  });
  for (const param of ['orgId', 'agentId', 'credentialId', 'webhookId']) {
    router.param(param, (id, _ctx, next) => {
      // Ids are UUIDs; anything else names nothing.
      if (!isUuid(id)) throw new NotFound(`${param.replace('Id', '')} ${id.slice(0, 64)} not found`);
      return next();
    });
  }
  const { auditWriter, settled } = c;
  orgsRoutes(router, { orgs: c.orgs, auditWriter, settled });
  agentsRoutes(router, { agents: c.agents, auditWriter, settled, defaultTtlSeconds: c.config.accessTokenTtlSeconds });
  credentialsRoutes(router, { credentials: c.credentials, auditWriter, settled });
  keysRoutes(router, { keys: c.keys, auditWriter, settled });
  auditRoutes(router, { audit: c.audit, checkpoints: c.checkpoints });
  usageRoutes(router, { usage: c.usage });
  webhooksRoutes(router, { webhooks: c.webhooks, auditWriter, settled });
}

/** The server's version, as MCP clients are told it (serverInfo). */
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** agent-idp's own MCP server at /mcp: its tools run the management routes (mcpOperationsRouter). */
export function mcpEndpoint(c: Container, verifier: AccessTokenVerifier, rootOrgId: () => string): Router {
  return mcpRouter({
    issuer: c.config.publicUrl,
    verifier,
    checkProof: dpopProofChecker(c.config.publicUrl, c.repositories.replays),
    rootOrgId,
    auditWriter: c.auditWriter,
    buckets: new TokenBuckets(c.config.managementRateLimit, c.config.managementRateBurst, c.clock),
    onRateLimited: () => c.metrics.rateLimited('management'),
    dispatch: dispatchTo(mcpOperationsRouter(c).routes() as Middleware),
    logger: c.logger,
    version: VERSION,
  });
}

/** Routes of /api/v1 that need no token: the public half of a signing key. */
export function publicRouter(c: Container): Router {
  const router = new Router({ prefix: MANAGEMENT_AUDIENCE_PATH });
  router.use(problemHandler(c.logger));
  publicKeyRoutes(router, { keys: c.keys, checkpointSigner: (kid) => c.repositories.checkpoints.signer(kid) });
  agentJwksRoutes(router, { credentials: c.credentials });
  return router;
}

/** Our RFC 7662 and RFC 7009 endpoints (oidc-provider serves /token, discovery and the JWKS). */
export function oauthRouter(c: Container, verifier: AccessTokenVerifier): Router {
  const router = new Router();
  router.use(oauthErrorHandler(c.logger));
  const client = {
    clients: c.clients,
    credentials: c.credentials,
    throttle: c.throttle,
    auditWriter: c.auditWriter,
    replays: c.repositories.replays,
    issuer: c.config.publicUrl,
  };
  router.post(INTROSPECTION_PATH, introspectionEndpoint({ ...client, verifier }));
  router.post(REVOCATION_PATH, c.settled, revocationEndpoint({ ...client, verifier, revocations: c.repositories.revocations }));
  return router;
}

/** One route as its chain declares it: what it requires, and whether it waits for every instance. */
export interface RouteInfo {
  method: string;
  /** With `{param}` as in openapi.yaml. */
  path: string;
  scope?: string;
  operator?: boolean;
  settles: boolean;
}

/** The routes of a router, read from its own stack (tests build their rule tables from it). */
export function describeRoutes(router: Router<never> | Router): RouteInfo[] {
  return router.stack.flatMap((layer) => {
    const chain = layer.stack as (Middleware & Partial<ScopeCheck> & Partial<SettleStep>)[];
    const check = chain.find((m) => typeof m.scope === 'string');
    return layer.methods
      .filter((method) => method !== 'HEAD')
      .map((method) => ({
        method,
        path: String(layer.path).replace(/:(\w+)/g, '{$1}'),
        ...(check ? { scope: check.scope, operator: check.operator } : {}),
        settles: chain.some((m) => m.settles === true),
      }));
  });
}
