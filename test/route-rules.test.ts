import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api } from './helpers/api.ts';
import { agentWithSecret, createOrg, managementToken } from './factories.ts';
import type { RouteInfo } from '../src/app/routes.ts';

// The rules every management route keeps, for every route the router has: the table is the
// router's own list (Idp.routes, read off each route's chain), so a new route cannot escape it.

let t: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;
let other: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  t = await startTestIdp();
  [org, other] = [await createOrg(t), await createOrg(t)];
});
afterAll(() => t.close());

/** A valid body for each route that needs one; any other route is sent none. */
const BODIES: Record<string, unknown> = {
  'POST /api/v1/orgs': { name: 'never-created' },
  'POST /api/v1/agents': { name: 'x' },
  'PATCH /api/v1/agents/{agentId}': { name: 'renamed' },
  'PATCH /api/v1/orgs/{orgId}': { limits: { maxAgents: 1000 } },
  'POST /api/v1/webhooks': { url: 'https://hooks.example.com/never', events: ['webhook.test'] },
  'PATCH /api/v1/webhooks/{webhookId}': { description: 'changed' },
};

let webhookId: string | undefined;

/** Objects of `org` for the path parameters: the org itself, a fresh agent with a secret, an audit event about it, a webhook. */
async function target(): Promise<Record<string, string>> {
  const a = await agentWithSecret(t, org.token);
  const events = await api(t.url, org.token).get(`/api/v1/audit?agentId=${a.clientId}&action=agent.created`);
  // One webhook for every call (an org holds at most 20); disabled, so nothing is ever sent to it.
  webhookId ??= (
    await api(t.url, org.token).post('/api/v1/webhooks', { body: { url: 'https://hooks.example.com/x', events: ['webhook.test'], enabled: false } })
  ).body.webhookId as string;
  return {
    orgId: org.orgId,
    agentId: a.clientId,
    credentialId: a.credential.credentialId,
    eventId: events.body.data[0].eventId,
    // A well-formed kid that names no key: only the checks before the handler are under test.
    kid: 'no-such-key',
    webhookId,
  };
}

function pathOf(route: RouteInfo, ids: Record<string, string>): string {
  return route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (!(name in ids)) throw new Error(`no test object for {${name}} of ${route.method} ${route.path}`);
    return ids[name];
  });
}

function send(route: RouteInfo, token: string | undefined, ids: Record<string, string>) {
  const method = route.method.toLowerCase() as 'get' | 'post' | 'patch' | 'delete';
  return api(t.url, token)[method](pathOf(route, ids), { body: BODIES[`${route.method} ${route.path}`] });
}

const label = (r: RouteInfo) => `${r.method} ${r.path}`;

describe('the rules every management route keeps', () => {
  it('cover the whole router', () => {
    expect(t.idp.routes.length).toBeGreaterThanOrEqual(18);
    // The bodies above are for routes that exist.
    expect(Object.keys(BODIES).filter((key) => !t.idp.routes.some((r) => label(r) === key))).toEqual([]);
  });

  it('401 without a valid bearer token, on every route', async () => {
    const ids = await target();
    for (const route of t.idp.routes) {
      for (const token of [undefined, 'garbage', `${org.token.slice(0, -2)}xx`]) {
        const res = await send(route, token, ids);
        expect({ route: label(route), token: token?.slice(0, 8), status: res.status, code: res.body?.code }).toEqual({
          route: label(route),
          token: token?.slice(0, 8),
          status: 401,
          code: 'unauthorized',
        });
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
  });

  it('403 without the scope, on every route', async () => {
    const ids = await target();
    for (const route of t.idp.routes) {
      const otherScope = route.scope!.endsWith(':read') ? 'audit:read' : 'agents:read';
      const narrow = await managementToken(t, t.operator.clientId, t.operator.clientSecret, otherScope === route.scope ? 'agents:write' : otherScope);
      const res = await send(route, narrow, ids);
      expect({ route: label(route), status: res.status, code: res.body?.code }).toEqual({ route: label(route), status: 403, code: 'forbidden' });
    }
  });

  it("403 for an org admin on the operators' routes, whatever its scopes", async () => {
    const ids = await target();
    const operatorRoutes = t.idp.routes.filter((r) => r.operator);
    expect(operatorRoutes.map(label).sort()).toEqual(
      t.idp.routes
        .filter((r) => /^\/api\/v1\/(keys|orgs)/.test(r.path))
        .map(label)
        .sort(),
    );
    for (const route of operatorRoutes) {
      const res = await send(route, org.token, ids);
      expect({ route: label(route), status: res.status }).toEqual({ route: label(route), status: 403 });
    }
  });

  it("404 for another org's object, which stays as it was, on every route that names one", async () => {
    const orgScoped = t.idp.routes.filter((r) => /\{(agentId|credentialId|eventId|webhookId)\}/.test(r.path));
    expect(orgScoped.length).toBeGreaterThanOrEqual(8);
    for (const route of orgScoped) {
      const ids = await target();
      const before = (await api(t.url, org.token).get(`/api/v1/agents/${ids.agentId}/credentials`)).body;
      const res = await send(route, other.token, ids);
      expect({ route: label(route), status: res.status, code: res.body?.code }).toEqual({ route: label(route), status: 404, code: 'not_found' });
      const after = (await api(t.url, org.token).get(`/api/v1/agents/${ids.agentId}/credentials`)).body;
      expect(after).toEqual(before);
      expect((await api(t.url, org.token).get(`/api/v1/agents/${ids.agentId}`)).body.status).toBe('active');
      expect((await api(t.url, org.token).get(`/api/v1/webhooks/${ids.webhookId}`)).body).toMatchObject({ description: null, enabled: false });
    }
  });
});
