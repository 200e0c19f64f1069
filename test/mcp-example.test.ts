import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { AgentTokenClient, protectedResourceMetadataUrl } from '../sdk/src/index.ts';
import { start, type RunningServer } from '../sdk/examples/mcp-server/server.ts';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { agentWithSecret, createOrg, requestToken } from './factories.ts';

// agent-idp as the authorization server of another MCP server: the example in sdk/examples/mcp-server
// (the official MCP SDK, guarded by @agent-idp/sdk), reached with the official MCP client and a
// token the SDK got with resource=<the MCP server's URL>. Everything real: no mocks.

const OTHER_AUDIENCE = 'https://other.example';

describe('an MCP server protected with agent-idp', () => {
  let t: TestIdp;
  let mcp: RunningServer;
  let agent: Awaited<ReturnType<typeof agentWithSecret>>;
  let orgId: string;

  beforeAll(async () => {
    t = await startTestIdp();
    // Started first, on any free port: its URL is the audience the agent is registered with.
    mcp = await start({ issuer: t.url });
    const org = await createOrg(t);
    orgId = org.orgId;
    agent = await agentWithSecret(t, org.token, { name: 'mcp-caller', audiences: [mcp.url, OTHER_AUDIENCE], scopes: ['tools:call'] });
  });
  afterAll(async () => {
    await mcp?.close();
    await t?.close();
  });

  const tokenFor = (resource: string) =>
    new AgentTokenClient({ issuer: t.url, clientId: agent.clientId, clientSecret: agent.clientSecret }).getToken({ resource }).then((x) => x.accessToken);

  async function connect(token: string): Promise<Client> {
    const client = new Client({ name: 'mcp-example-test', version: '0.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    return client;
  }

  const initialize = (headers: Record<string, string> = {}) =>
    fetch(mcp.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '0' } },
      }),
    });

  it('discovery has what an MCP client needs: the token endpoint, client_credentials, the client authentication methods', async () => {
    const res = await fetch(`${t.url}/.well-known/oauth-authorization-server`);
    expect(res.status).toBe(200);
    const metadata = (await res.json()) as { grant_types_supported: string[]; token_endpoint_auth_methods_supported: string[] };
    expect(metadata).toMatchObject({ issuer: t.url, token_endpoint: `${t.url}/token`, jwks_uri: `${t.url}/.well-known/jwks.json` });
    expect(metadata.grant_types_supported).toContain('client_credentials');
    expect(metadata.token_endpoint_auth_methods_supported).toContain('client_secret_basic');
  });

  it('honours RFC 8707 resource: the audience is the MCP server URL, and only an audience of the agent is given', async () => {
    const token = await tokenFor(mcp.url);
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({ iss: t.url, aud: mcp.url, sub: agent.clientId });

    const foreign = await requestToken(t, agent.clientId, agent.clientSecret, { resource: 'http://127.0.0.1:1/mcp' });
    expect(foreign).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
  });

  it('serves the RFC 9728 document at its well-known URL, naming agent-idp', async () => {
    expect(mcp.metadataUrl).toBe(protectedResourceMetadataUrl(mcp.url));
    expect(mcp.metadataUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp$/);
    const res = await fetch(mcp.metadataUrl);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ resource: mcp.url, authorization_servers: [t.url], bearer_methods_supported: ['header'] });
  });

  it('lists its tools and calls them with the official MCP client and a token for its URL', async () => {
    const client = await connect(await tokenFor(mcp.url));
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual(['add', 'whoami']);

      const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
      expect(sum).toMatchObject({ structuredContent: { sum: 42 }, content: [{ type: 'text', text: '42' }] });
      expect(sum.isError).toBeFalsy();

      const who = await client.callTool({ name: 'whoami', arguments: {} });
      expect(who.structuredContent).toEqual({ agent: agent.clientId, org: orgId, scopes: ['tools:call'] });

      const bad = await client.callTool({ name: 'add', arguments: { a: 'two', b: 40 } });
      expect(bad).toMatchObject({ isError: true, content: [{ text: 'a and b must be numbers' }] });
    } finally {
      await client.close();
    }
  });

  it('answers 401 with resource_metadata without a token', async () => {
    const res = await initialize();
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${mcp.metadataUrl}"`);
  });

  it('refuses a token for another audience, over HTTP and to the MCP client', async () => {
    const token = await tokenFor(OTHER_AUDIENCE);
    const res = await initialize({ authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token", error_description="[^"]*aud[^"]*", resource_metadata="/);
    await expect(connect(token)).rejects.toThrow();
  });

  it('with required scopes, advertises them and answers 403 insufficient_scope to a token without them', async () => {
    const strict = await start({ issuer: t.url, scopes: ['tools:admin'] });
    try {
      const org = await createOrg(t);
      const caller = await agentWithSecret(t, org.token, { audiences: [strict.url], scopes: ['tools:call'] });
      const token = await new AgentTokenClient({ issuer: t.url, clientId: caller.clientId, clientSecret: caller.clientSecret }).getToken({
        resource: strict.url,
      });
      expect(await (await fetch(strict.metadataUrl)).json()).toMatchObject({ scopes_supported: ['tools:admin'] });
      const res = await fetch(strict.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token.accessToken}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_scope", .*scope="tools:admin", resource_metadata="/);
    } finally {
      await strict.close();
    }
  });
});
