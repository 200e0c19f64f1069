import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api } from './helpers/api.ts';
import { createOrg, managementToken, operatorToken, requestToken } from './factories.ts';

let t: TestIdp;

beforeAll(async () => {
  t = await startTestIdp();
});
afterAll(() => t.close());

describe('POST /api/v1/orgs', () => {
  it('creates a tenant with its first admin, who manages that org only', async () => {
    const res = await api(t.url, await operatorToken(t)).post('/api/v1/orgs', { body: { name: 'acme' } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'acme', admin: { clientId: res.body.admin.agentId } });
    const adminToken = await managementToken(t, res.body.admin.clientId, res.body.admin.clientSecret);
    const me = await api(t.url, adminToken).get(`/api/v1/agents/${res.body.admin.agentId}`);
    expect(me.body).toMatchObject({ orgId: res.body.orgId, scopes: ['agents:read', 'agents:write', 'audit:read'], audiences: [] });
    const listed = await api(t.url, adminToken).get('/api/v1/agents');
    expect(listed.body.data.map((a: { agentId: string }) => a.agentId)).toEqual([res.body.admin.agentId]);
    // The admin cannot obtain operator scopes.
    const escalate = await requestToken(t, res.body.admin.clientId, res.body.admin.clientSecret, { resource: `${t.url}/api/v1`, scope: 'orgs:write' });
    expect(escalate.body.error).toBe('invalid_scope');
  });

  it('refuses a duplicate name (409) and invalid names (400)', async () => {
    const operator = api(t.url, await operatorToken(t));
    await operator.post('/api/v1/orgs', { body: { name: 'dup' } });
    const dup = await operator.post('/api/v1/orgs', { body: { name: 'dup' } });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('org_name_taken');
    for (const body of [{}, { name: '' }, { name: 'a\nb' }, { name: 'ok', extra: true }]) {
      expect((await operator.post('/api/v1/orgs', { body })).status).toBe(400);
    }
  });
});

describe('GET /api/v1/orgs', () => {
  it('lists tenants for operators, without secrets', async () => {
    const created = await createOrg(t, 'listed-org');
    const res = await api(t.url, await operatorToken(t)).get('/api/v1/orgs?limit=100');
    expect(res.status).toBe(200);
    expect(res.body.data.map((o: { name: string }) => o.name)).toEqual(expect.arrayContaining(['root', 'listed-org']));
    expect(res.body.total).toBe(res.body.data.length);
    expect(res.text).not.toContain(created.admin.clientSecret);
    expect(res.text).not.toMatch(/clientSecret/);
  });
});
