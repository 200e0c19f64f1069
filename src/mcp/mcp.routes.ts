import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Logger } from '../lib/logger.ts';
import type { Actor } from '../http/actor.ts';
import { authenticate, type BearerVerifier, type DpopProofCheck } from '../http/bearer.ts';
import { readBody, BODY_LIMIT_BYTES } from '../http/body.ts';
import { HttpError } from '../http/errors.ts';
import { problemHandler } from '../http/problem.ts';
import { ALL_MANAGEMENT_SCOPES } from '../policies/scopes.ts';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { recordDenials } from '../audit/admin-denied.ts';
import { rateLimitPerToken, type TokenBuckets } from '../throttling/rate-limit.ts';
import { MCP_PATH, MCP_RESOURCE_METADATA_PATH, mcpAudience } from '../oauth/paths.ts';
import type { OperationDispatch } from './dispatch.ts';
import type * as McpServerModule from './mcp.server.ts';
import type * as StreamableHttpModule from '@modelcontextprotocol/sdk/server/streamableHttp.js';

// The MCP SDK, with zod and (through @hono/node-server) Node's fetch implementation, is 6 MB of
// live heap, which V8 turns into several times that of RSS under load (it sizes the old
// generation in proportion to what is live). A server whose clients never call /mcp need not
// carry it: it is loaded by the first request that does.
type McpModules = [typeof McpServerModule, typeof StreamableHttpModule];
let mcpModules: Promise<McpModules> | undefined;
function loadMcp(): Promise<McpModules> {
  mcpModules ??= Promise.all([import('./mcp.server.ts'), import('@modelcontextprotocol/sdk/server/streamableHttp.js')]);
  return mcpModules;
}

export interface McpRoutesDeps {
  issuer: string;
  verifier: BearerVerifier;
  checkProof: DpopProofCheck;
  rootOrgId: () => string;
  auditWriter: Pick<AuditWriter, 'write'>;
  /** The management API's limit per token, applied per /mcp request. */
  buckets: TokenBuckets;
  onRateLimited: () => void;
  dispatch: OperationDispatch;
  logger: Logger;
  version: string;
}

/**
 * RFC 9728 §5.1: a 401 of /mcp names the protected resource metadata, so that an MCP client
 * can find the authorization server; `error` only when a token was presented (RFC 6750 §3.1).
 */
function pointToMetadata(metadataUrl: string) {
  return async function challengeWithMetadata(ctx: Context, next: Next) {
    try {
      await next();
    } catch (err) {
      if (err instanceof HttpError && err.status === 401) {
        const challenge = err.headers['WWW-Authenticate'] ?? '';
        const error = ctx.get('authorization') ? (/error="(\w+)"/.exec(challenge)?.[1] ?? 'invalid_token') : undefined;
        // A DPoP challenge (a bound token, RFC 9449 §7.1) keeps its scheme and algorithms.
        const scheme = challenge.startsWith('DPoP') ? `DPoP algs="${/algs="([^"]*)"/.exec(challenge)?.[1] ?? ''}", ` : 'Bearer ';
        err.headers['WWW-Authenticate'] = `${scheme}${error ? `error="${error}", ` : ''}resource_metadata="${metadataUrl}"`;
      }
      throw err;
    }
  };
}

/** JSON-RPC error answers of the endpoint itself (before any MCP server sees the request). */
function jsonRpcError(ctx: Context, status: number, code: number, message: string) {
  ctx.status = status;
  ctx.body = { jsonrpc: '2.0', error: { code, message }, id: null };
}

/** agent-idp's own MCP server (Streamable HTTP, stateless) and its RFC 9728 metadata. */
export function mcpRouter(deps: McpRoutesDeps): Router {
  const resource = mcpAudience(deps.issuer);
  const metadataUrl = deps.issuer + MCP_RESOURCE_METADATA_PATH;
  const router = new Router();

  router.get(MCP_RESOURCE_METADATA_PATH, (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = { resource, authorization_servers: [deps.issuer], scopes_supported: ALL_MANAGEMENT_SCOPES, bearer_methods_supported: ['header'] };
  });

  const guard = [
    problemHandler(deps.logger),
    pointToMetadata(metadataUrl),
    recordDenials(deps.auditWriter),
    authenticate(deps.verifier, resource, deps.rootOrgId, deps.checkProof),
    rateLimitPerToken(deps.buckets, deps.onRateLimited),
  ];

  router.post(MCP_PATH, ...guard, async (ctx) => {
    let message: unknown;
    try {
      message = JSON.parse((await readBody(ctx, BODY_LIMIT_BYTES)).toString('utf8'));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      return jsonRpcError(ctx, 400, -32700, 'Parse error: the body is not JSON');
    }
    const caller = { actor: ctx.state.actor as Actor, requestId: ctx.state.requestId as string, ip: ctx.ip, userAgent: ctx.get('user-agent').slice(0, 512) };
    const [{ mcpServer }, { StreamableHTTPServerTransport }] = await loadMcp();
    const server = mcpServer(deps.dispatch, caller, deps.version);
    // Stateless: no session; one JSON answer per POST, so no stream outlives the request.
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await server.connect(transport);
    ctx.respond = false;
    // The answer may be written after handleRequest returns: wait for it, so that a drain waits for the tool too.
    const done = new Promise<void>((resolve) => ctx.res.once('close', () => resolve()));
    try {
      await transport.handleRequest(ctx.req, ctx.res, message);
      await done;
    } finally {
      await transport.close();
      await server.close();
    }
  });

  // Stateless operation keeps no session: no event stream to open (GET) and none to end (DELETE).
  router.get(MCP_PATH, ...guard, (ctx) => {
    ctx.set('Allow', 'POST');
    jsonRpcError(ctx, 405, -32000, 'Method not allowed: this server is stateless; POST JSON-RPC messages');
  });
  router.delete(MCP_PATH, ...guard, (ctx) => {
    ctx.set('Allow', 'POST');
    jsonRpcError(ctx, 405, -32000, 'Method not allowed: this server is stateless and keeps no session');
  });
  return router;
}
