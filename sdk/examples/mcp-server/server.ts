import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { createVerifier, expressAuth, protectedResourceMetadata, protectedResourceMetadataUrl, type AccessTokenClaims } from '@agent-idp/sdk';

// An MCP server (the official SDK's low-level Server over Streamable HTTP, stateless) that accepts
// only agent-idp tokens whose audience is its own URL, as the MCP authorization spec asks: a client
// without a token gets a 401 whose resource_metadata names the RFC 9728 document served here,
// which names agent-idp as the authorization server.

export interface StartOptions {
  /** agent-idp's PUBLIC_URL, exactly. */
  issuer: string;
  /** This server's URL, the audience its tokens must carry; `http://<host>:<port>/mcp` when left out. */
  resource?: string;
  /** 0 (the default) for any free port. */
  port?: number;
  host?: string;
  /** Scopes every token must carry, advertised in the metadata. */
  scopes?: string[];
}

export interface RunningServer {
  /** The resource: where MCP clients connect. */
  url: string;
  /** Where the RFC 9728 document is. */
  metadataUrl: string;
  close(): Promise<void>;
}

// Plain JSON Schema, so that the example needs no schema library besides the MCP SDK.
const TOOLS: Tool[] = [
  {
    name: 'whoami',
    description: 'The calling agent, as its verified token says: agent id, org and scopes.',
    inputSchema: { type: 'object', properties: {} },
    annotations: { readOnlyHint: true },
  },
  {
    name: 'add',
    description: 'Adds two numbers.',
    inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] },
    annotations: { readOnlyHint: true },
  },
];

function callTool(name: string, args: Record<string, unknown>, auth: AuthInfo | undefined): CallToolResult {
  if (name === 'whoami') {
    const claims = auth?.extra?.claims as AccessTokenClaims;
    const who = { agent: claims.sub, org: claims.org_id, scopes: auth!.scopes };
    return { content: [{ type: 'text', text: JSON.stringify(who) }], structuredContent: who };
  }
  if (name === 'add') {
    const { a, b } = args;
    // A bad argument is a tool result the model can read, not a protocol error (MCP spec, tools).
    if (typeof a !== 'number' || typeof b !== 'number') return { isError: true, content: [{ type: 'text', text: 'a and b must be numbers' }] };
    return { content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } };
  }
  return { isError: true, content: [{ type: 'text', text: `unknown tool ${name}` }] };
}

function mcpServer(): Server {
  const server = new Server({ name: 'agent-idp-example', version: '0.1.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, (request, extra) => callTool(request.params.name, request.params.arguments ?? {}, extra.authInfo));
  return server;
}

/** The verified claims as the MCP SDK hands them to the handlers (`extra.authInfo`). */
function authInfo(token: string, claims: AccessTokenClaims, resource: string): AuthInfo {
  return {
    token,
    clientId: claims.client_id ?? claims.sub,
    scopes: claims.scope?.split(' ').filter(Boolean) ?? [],
    expiresAt: claims.exp,
    resource: new URL(resource),
    extra: { claims },
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export async function start(options: StartOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const http = createServer((req, res) => handle(req, res).catch((err: unknown) => fail(res, err)));
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, host, resolve);
  });
  const resource = options.resource ?? `http://${host}:${(http.address() as AddressInfo).port}/mcp`;
  const metadataUrl = protectedResourceMetadataUrl(resource);
  const metadata = protectedResourceMetadata({ resource, issuer: options.issuer, scopes: options.scopes });
  // Audience = this server's URL: a token the agent got for another resource is refused (RFC 8707).
  const verifier = createVerifier({ issuer: options.issuer, audience: resource, requiredScopes: options.scopes });
  const guard = expressAuth(verifier, { resourceMetadataUrl: metadataUrl });
  // Routed by path, so that the server also answers behind a proxy that changes the origin.
  const mcpPath = new URL(resource).pathname;
  const metadataPath = new URL(metadataUrl).pathname;

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === metadataPath && req.method === 'GET') return send(res, 200, metadata, { 'cache-control': 'max-age=3600' });
    if (path !== mcpPath) return send(res, 404, { error: 'not_found' });
    // Stateless: no session to resume, so no GET event stream and no DELETE.
    if (req.method !== 'POST') return send(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }, { allow: 'POST' });

    // The SDK's middleware answers the 401/403 challenges itself, and calls next with the claims
    // on the object it is given (not on req: the MCP transport wants its own AuthInfo there).
    const holder: { headers: { authorization?: string }; auth?: AccessTokenClaims } = { headers: req.headers };
    guard(holder, res, (err) => {
      if (err) return fail(res, err);
      const token = req.headers.authorization!.replace(/^Bearer +/i, '').trim();
      serveMcp(Object.assign(req, { auth: authInfo(token, holder.auth!, resource) }), res).catch((e: unknown) => fail(res, e));
    });
  }

  return {
    url: resource,
    metadataUrl,
    async close() {
      const closed = new Promise((resolve) => http.close(resolve));
      http.closeAllConnections();
      await closed;
    },
  };
}

async function serveMcp(req: IncomingMessage & { auth: AuthInfo }, res: ServerResponse) {
  // One Server and transport per request: stateless, nothing shared between agents' requests.
  const server = mcpServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res);
}

function fail(res: ServerResponse, err: unknown) {
  // The JWKS unreachable, for one: the agent is not at fault, so no 401.
  console.error(err);
  if (!res.headersSent) send(res, 500, { error: 'server_error' });
  else res.end();
}
