import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { agentWithSecret, createOrg, managementToken, requestToken } from './factories.ts';

// agent-idp's own MCP server (design/mcp.md), driven by the official MCP client over real HTTP.

let t: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;
let other: Awaited<ReturnType<typeof createOrg>>;
const clients: Client[] = [];

beforeAll(async () => {
  t = await startTestIdp();
  [org, other] = [await createOrg(t), await createOrg(t)];
});
afterAll(async () => {
  for (const client of clients) await client.close();
  await t.close();
});

/** A token for <issuer>/mcp of an agent, with the given scopes (default: all it holds). */
async function mcpToken(clientId: string, clientSecret: string, scope?: string): Promise<string> {
  const res = await requestToken(t, clientId, clientSecret, { resource: `${t.url}/mcp`, ...(scope ? { scope } : {}) });
  if (res.status !== 200) throw new Error(`no mcp token: ${JSON.stringify(res.body)}`);
  return res.body.access_token;
}

async function connect(token: string): Promise<Client> {
  const client = new Client({ name: 'agent-idp-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  clients.push(client);
  return client;
}

async function tool(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

const text = (result: CallToolResult) => (result.content[0] as { text: string }).text;

describe('/mcp', () => {
  it('lists the tools, each with an input schema and annotations', async () => {
    const client = await connect(await mcpToken(org.admin.clientId, org.admin.clientSecret));
    const { tools } = await client.listTools();
    expect(tools.map((x) => x.name).sort()).toEqual(
      [
        'list_agents',
        'get_agent',
        'create_agent',
        'update_agent',
        'suspend_agent',
        'reactivate_agent',
        'decommission_agent',
        'list_credentials',
        'create_credential',
        'rotate_credential',
        'revoke_credential',
        'query_audit',
        'get_usage',
        'list_keys',
        'rotate_keys',
      ].sort(),
    );
    const byName = new Map(tools.map((x) => [x.name, x]));
    for (const x of tools) {
      expect(x.inputSchema.type).toBe('object');
      expect(typeof x.annotations?.readOnlyHint).toBe('boolean');
    }
    expect(byName.get('list_agents')!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get('decommission_agent')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(byName.get('create_agent')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    // The OpenAPI request schema, references inlined.
    const create = byName.get('create_agent')!.inputSchema as { required: string[]; properties: Record<string, { type?: string }> };
    expect(create.required).toEqual(['name']);
    expect(create.properties.name.type).toBe('string');
    expect(JSON.stringify(create)).not.toContain('$ref');
    expect((byName.get('rotate_credential')!.inputSchema as { required: string[] }).required).toEqual(['agentId', 'credentialId']);
  });

  it('creates an agent and a credential whose secret works at /token, with audit events naming the actor', async () => {
    const client = await connect(await mcpToken(org.admin.clientId, org.admin.clientSecret));
    const created = await tool(client, 'create_agent', { name: 'via-mcp', scopes: ['orders:read'], audiences: ['https://orders.example'] });
    expect(created.isError).toBeFalsy();
    const agent = created.structuredContent as { agentId: string; orgId: string; name: string };
    expect(agent).toMatchObject({ name: 'via-mcp', orgId: org.orgId, status: 'active' });
    expect(JSON.parse(text(created))).toEqual(agent);
    // The same answer as the route's.
    expect((await api(t.url, org.token).get(`/api/v1/agents/${agent.agentId}`)).body).toEqual(agent);

    const credential = (await tool(client, 'create_credential', { agentId: agent.agentId })).structuredContent as {
      credentialId: string;
      clientSecret: string;
    };
    expect(credential.clientSecret).toMatch(/\S{40,}/);
    const token = await requestToken(t, agent.agentId, credential.clientSecret, { scope: 'orders:read' });
    expect(token.status).toBe(200);

    // Listing never shows the secret.
    const listed = await tool(client, 'list_credentials', { agentId: agent.agentId });
    expect(listed.structuredContent).toMatchObject({ total: 1, data: [{ credentialId: credential.credentialId }] });
    expect(text(listed)).not.toContain(credential.clientSecret);

    const events = (await tool(client, 'query_audit', { agentId: agent.agentId })).structuredContent as {
      data: { action: string; actor: { type: string; id: string }; orgId: string }[];
    };
    const byAction = new Map(events.data.map((e) => [e.action, e]));
    for (const action of ['agent.created', 'credential.created']) {
      expect(byAction.get(action)).toMatchObject({ actor: { type: 'agent', id: org.admin.clientId }, orgId: org.orgId });
    }

    // Suspend, reactivate, rotate, revoke, decommission: each as its route.
    expect((await tool(client, 'suspend_agent', { agentId: agent.agentId })).structuredContent).toMatchObject({ status: 'suspended' });
    expect((await requestToken(t, agent.agentId, credential.clientSecret)).status).toBe(401);
    expect((await tool(client, 'reactivate_agent', { agentId: agent.agentId })).structuredContent).toMatchObject({ status: 'active' });
    const rotated = (await tool(client, 'rotate_credential', { agentId: agent.agentId, credentialId: credential.credentialId })).structuredContent as {
      clientSecret: string;
    };
    expect((await requestToken(t, agent.agentId, rotated.clientSecret)).status).toBe(200);
    expect(await tool(client, 'revoke_credential', { agentId: agent.agentId, credentialId: credential.credentialId })).toMatchObject({
      content: [{ type: 'text', text: 'the credential is revoked' }],
    });
    expect((await requestToken(t, agent.agentId, rotated.clientSecret)).status).toBe(401);
    expect((await tool(client, 'decommission_agent', { agentId: agent.agentId })).isError).toBeFalsy();
    expect((await tool(client, 'get_agent', { agentId: agent.agentId })).structuredContent).toMatchObject({ status: 'decommissioned' });
    const later = (await tool(client, 'query_audit', { agentId: agent.agentId, limit: 50 })).structuredContent as { data: { action: string }[] };
    expect(later.data.map((e) => e.action)).toEqual(
      expect.arrayContaining(['agent.suspended', 'agent.reactivated', 'credential.rotated', 'credential.revoked', 'agent.decommissioned']),
    );
    expect((await tool(client, 'get_usage')).structuredContent).toMatchObject({ agents: expect.any(Object) });
  });

  it('refuses a tool without its scope, changing nothing', async () => {
    const client = await connect(await mcpToken(org.admin.clientId, org.admin.clientSecret, 'agents:read'));
    const before = (await api(t.url, org.token).get('/api/v1/agents?limit=100')).body.total;
    const result = await tool(client, 'create_agent', { name: 'never-created' });
    expect(result.isError).toBe(true);
    expect(text(result)).toContain('agents:write');
    expect((await api(t.url, org.token).get('/api/v1/agents?limit=100')).body.total).toBe(before);
    // An operator tool outside the root org.
    expect((await tool(client, 'list_keys')).isError).toBe(true);
  });

  it('refuses bad arguments with the validation problem, changing nothing', async () => {
    const client = await connect(await mcpToken(org.admin.clientId, org.admin.clientSecret));
    const before = (await api(t.url, org.token).get('/api/v1/agents?limit=100')).body.total;
    const unknown = await tool(client, 'create_agent', { name: 'x', colour: 'red' });
    expect(unknown).toMatchObject({ isError: true });
    expect(text(unknown)).toContain('/colour is not a known field');
    expect((await tool(client, 'create_agent', {})).isError).toBe(true);
    expect((await tool(client, 'list_agents', { limit: 1000 })).isError).toBe(true);
    expect((await tool(client, 'get_agent', { agentId: 'not-a-uuid' })).isError).toBe(true);
    expect((await tool(client, 'get_usage', { extra: 1 })).isError).toBe(true);
    expect((await api(t.url, org.token).get('/api/v1/agents?limit=100')).body.total).toBe(before);
  });

  it("does not show another org's agents", async () => {
    const theirs = await agentWithSecret(t, other.token, { name: 'theirs' });
    const client = await connect(await mcpToken(org.admin.clientId, org.admin.clientSecret));
    const got = await tool(client, 'get_agent', { agentId: theirs.clientId });
    expect(got.isError).toBe(true);
    expect(text(got)).toMatch(/not found/);
    const listed = (await tool(client, 'list_agents', { limit: 100 })).structuredContent as { data: { agentId: string }[] };
    expect(listed.data.map((a) => a.agentId)).not.toContain(theirs.clientId);
    expect((await tool(client, 'decommission_agent', { agentId: theirs.clientId })).isError).toBe(true);
    expect((await api(t.url, other.token).get(`/api/v1/agents/${theirs.clientId}`)).body.status).toBe('active');
  });

  it('serves the operators their tools', async () => {
    const client = await connect(await mcpToken(t.operator.clientId, t.operator.clientSecret));
    const keys = (await tool(client, 'list_keys')).structuredContent as { data: { status: string }[] };
    expect(keys.data.map((k) => k.status)).toContain('active');
    const rotated = await tool(client, 'rotate_keys');
    expect(rotated.structuredContent).toMatchObject({ active: { status: 'active' }, next: { status: 'next' } });
  });

  it('answers 401 naming the resource metadata, without a token or with one for another audience', async () => {
    const metadata = `resource_metadata="${t.url}/.well-known/oauth-protected-resource/mcp"`;
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    };
    const headers = { accept: 'application/json, text/event-stream' };
    const none = await call(t.url, 'POST', '/mcp', { body: initialize, headers });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe(`Bearer ${metadata}`);

    const apiToken = await managementToken(t, org.admin.clientId, org.admin.clientSecret);
    const wrong = await call(t.url, 'POST', '/mcp', { body: initialize, headers: { ...headers, authorization: `Bearer ${apiToken}` } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", ${metadata}`);

    // Nor does a token for /mcp open /api/v1.
    const token = await mcpToken(org.admin.clientId, org.admin.clientSecret);
    expect((await api(t.url, token).get('/api/v1/agents')).status).toBe(401);

    // The official client gets the 401 too.
    await expect(connect('garbage')).rejects.toThrow();
  });

  it('is an audience for agents with a management scope only, and never registered', async () => {
    const plain = await agentWithSecret(t, org.token, { scopes: ['orders:read'], audiences: ['https://orders.example'] });
    const refused = await requestToken(t, plain.clientId, plain.clientSecret, { resource: `${t.url}/mcp` });
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
    const registered = await api(t.url, org.token).post('/api/v1/agents', { body: { name: 'x', audiences: [`${t.url}/mcp`] } });
    expect(registered.status).toBe(400);
    expect(registered.body.errors).toEqual([{ field: '/audiences/0', message: expect.stringContaining(`${t.url}/mcp is implied`) }]);
  });

  it('keeps no session: GET and DELETE answer 405', async () => {
    const token = await mcpToken(org.admin.clientId, org.admin.clientSecret);
    for (const method of ['GET', 'DELETE']) {
      const res = await call(t.url, method, '/mcp', { token });
      expect({ method, status: res.status, allow: res.headers.get('allow') }).toEqual({ method, status: 405, allow: 'POST' });
    }
  });

  it('publishes its protected resource metadata (RFC 9728)', async () => {
    const res = await call(t.url, 'GET', '/.well-known/oauth-protected-resource/mcp');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      resource: `${t.url}/mcp`,
      authorization_servers: [t.url],
      scopes_supported: ['agents:read', 'agents:write', 'audit:read', 'webhooks:read', 'webhooks:write', 'keys:read', 'keys:write', 'orgs:read', 'orgs:write'],
      bearer_methods_supported: ['header'],
    });
  });
});
