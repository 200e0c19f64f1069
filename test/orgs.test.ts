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
    expect(me.body).toMatchObject({
      orgId: res.body.orgId,
      scopes: ['agents:read', 'agents:write', 'audit:read', 'webhooks:read', 'webhooks:write'],
      audiences: [],
    });
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

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

async function storedLimits(orgId: string) {
  const [row] = await t.idp.database.dataSource.query('SELECT name, limits FROM orgs WHERE id = $1', [orgId]);
  return row as { name: string; limits: Record<string, number> };
}

describe('GET /api/v1/orgs/{orgId}', () => {
  it('shows an org with its limits (none at first), in the list too; 404 for an unknown or malformed id', async () => {
    const created = await createOrg(t);
    const operator = api(t.url, await operatorToken(t));
    const res = await operator.get(`/api/v1/orgs/${created.orgId}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ orgId: created.orgId, name: expect.any(String), limits: {}, createdAt: expect.any(String) });
    const listed = await operator.get('/api/v1/orgs?limit=100');
    expect(listed.body.data.find((o: { orgId: string }) => o.orgId === created.orgId)).toEqual(res.body);
    for (const id of [UNKNOWN, 'not-a-uuid']) {
      const missing = await operator.get(`/api/v1/orgs/${id}`);
      expect({ status: missing.status, code: missing.body.code }).toEqual({ status: 404, code: 'not_found' });
    }
  });
});

describe('PATCH /api/v1/orgs/{orgId}', () => {
  it('sets limits, removes one with null and keeps the others; stored, shown, and audited with before and after', async () => {
    const created = await createOrg(t);
    const operator = api(t.url, await operatorToken(t));
    const path = `/api/v1/orgs/${created.orgId}`;
    const set = await operator.patch(path, { body: { limits: { maxAgents: 10, maxActiveCredentialsPerAgent: 2, tokensPerMinutePerAgent: 600 } } });
    expect(set.status).toBe(200);
    expect(set.body.limits).toEqual({ maxAgents: 10, maxActiveCredentialsPerAgent: 2, tokensPerMinutePerAgent: 600 });

    const removed = await operator.patch(path, { body: { limits: { tokensPerMinutePerAgent: null, maxAgents: 20 } } });
    expect(removed.body.limits).toEqual({ maxAgents: 20, maxActiveCredentialsPerAgent: 2 });
    expect((await storedLimits(created.orgId)).limits).toEqual({ maxAgents: 20, maxActiveCredentialsPerAgent: 2 });
    expect((await operator.get(path)).body).toEqual(removed.body);

    const renamed = await operator.patch(path, { body: { name: `${created.orgId}-renamed` } });
    expect(renamed.body).toMatchObject({ name: `${created.orgId}-renamed`, limits: { maxAgents: 20, maxActiveCredentialsPerAgent: 2 } });

    const events = await operator.get(`/api/v1/audit?action=org.updated&limit=100`);
    const mine = events.body.data.filter((e: { target: { id: string } }) => e.target.id === created.orgId).reverse();
    expect(mine.map((e: { details: unknown }) => e.details)).toEqual([
      {
        before: { name: expect.any(String), limits: {} },
        after: { name: expect.any(String), limits: { maxAgents: 10, maxActiveCredentialsPerAgent: 2, tokensPerMinutePerAgent: 600 } },
      },
      {
        before: { name: expect.any(String), limits: { maxAgents: 10, maxActiveCredentialsPerAgent: 2, tokensPerMinutePerAgent: 600 } },
        after: { name: expect.any(String), limits: { maxAgents: 20, maxActiveCredentialsPerAgent: 2 } },
      },
      {
        before: { name: expect.any(String), limits: { maxAgents: 20, maxActiveCredentialsPerAgent: 2 } },
        after: { name: `${created.orgId}-renamed`, limits: { maxAgents: 20, maxActiveCredentialsPerAgent: 2 } },
      },
    ]);
    expect(mine[0]).toMatchObject({ actor: { type: 'agent', id: t.operator.clientId }, target: { type: 'org', id: created.orgId }, outcome: 'success' });
  });

  it('names each invalid field and changes nothing', async () => {
    const created = await createOrg(t);
    const operator = api(t.url, await operatorToken(t));
    const path = `/api/v1/orgs/${created.orgId}`;
    await operator.patch(path, { body: { limits: { maxAgents: 5 } } });
    const before = await storedLimits(created.orgId);
    const cases: [unknown, string][] = [
      [{}, '/'],
      [{ limits: {} }, '/limits'],
      [{ limits: { maxAgents: 0 } }, '/limits/maxAgents'],
      [{ limits: { maxAgents: -3 } }, '/limits/maxAgents'],
      [{ limits: { maxAgents: 1_000_001 } }, '/limits/maxAgents'],
      [{ limits: { maxActiveCredentialsPerAgent: 1.5 } }, '/limits/maxActiveCredentialsPerAgent'],
      [{ limits: { tokensPerMinutePerAgent: '60' } }, '/limits/tokensPerMinutePerAgent'],
      [{ limits: { maxWidgets: 1 } }, '/limits/maxWidgets'],
      [{ limits: 5 }, '/limits'],
      [{ limits: { maxAgents: 1 }, plan: 'gold' }, '/plan'],
      [{ name: '' }, '/name'],
      [{ name: 'a\u0007b' }, '/name'],
    ];
    for (const [body, field] of cases) {
      const res = await operator.patch(path, { body });
      expect({ body, status: res.status, code: res.body.code }).toEqual({ body, status: 400, code: 'validation_failed' });
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    expect(await storedLimits(created.orgId)).toEqual(before);
    expect((await operator.patch(`/api/v1/orgs/${UNKNOWN}`, { body: { limits: { maxAgents: 1 } } })).status).toBe(404);
    const taken = await operator.patch(path, { body: { name: 'root' } });
    expect({ status: taken.status, code: taken.body.code }).toEqual({ status: 409, code: 'org_name_taken' });
    expect(await storedLimits(created.orgId)).toEqual(before);
  });

  it("is the operators' alone: an org admin (any org's) and an operator token without orgs:write get 403, and nothing changes", async () => {
    const created = await createOrg(t);
    const other = await createOrg(t);
    const before = await storedLimits(created.orgId);
    for (const token of [created.token, other.token]) {
      expect((await api(t.url, token).get(`/api/v1/orgs/${created.orgId}`)).status).toBe(403);
      const res = await api(t.url, token).patch(`/api/v1/orgs/${created.orgId}`, { body: { limits: { maxAgents: 1_000_000 } } });
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 403, code: 'forbidden' });
    }
    const readOnly = api(t.url, await operatorToken(t, 'orgs:read'));
    expect((await readOnly.get(`/api/v1/orgs/${created.orgId}`)).status).toBe(200);
    expect((await readOnly.patch(`/api/v1/orgs/${created.orgId}`, { body: { limits: { maxAgents: 1 } } })).status).toBe(403);
    expect(await storedLimits(created.orgId)).toEqual(before);
  });

  it("sets the root org's limits too, which bind the operators' own agents", async () => {
    const operator = api(t.url, await operatorToken(t));
    const root = (await operator.get('/api/v1/orgs?limit=100')).body.data.find((o: { name: string }) => o.name === 'root');
    const [{ n }] = await t.idp.database.dataSource.query(`SELECT count(*)::int AS n FROM agents WHERE org_id = $1 AND status <> 'decommissioned'`, [
      root.orgId,
    ]);
    const set = await operator.patch(`/api/v1/orgs/${root.orgId}`, { body: { limits: { maxAgents: n } } });
    expect(set.status).toBe(200);
    const refused = await operator.post('/api/v1/agents', { body: { name: 'one-too-many' } });
    expect({ status: refused.status, code: refused.body.code, limit: refused.body.limit }).toEqual({ status: 409, code: 'limit_reached', limit: 'maxAgents' });
    await operator.patch(`/api/v1/orgs/${root.orgId}`, { body: { limits: { maxAgents: null } } });
    expect((await operator.post('/api/v1/agents', { body: { name: 'room-again' } })).status).toBe(201);
  });
});
