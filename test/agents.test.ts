import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api } from './helpers/api.ts';
import { agentWithSecret, createAgent, createOrg, managementToken, operatorToken } from './factories.ts';

let t: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  t = await startTestIdp();
  org = await createOrg(t);
});
afterAll(() => t.close());

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

describe('POST /api/v1/agents', () => {
  it("registers an agent in the caller's org", async () => {
    const res = await api(t.url, org.token).post('/api/v1/agents', {
      body: {
        name: 'billing-agent',
        description: 'Reconciles invoices',
        owner: 'team-billing@example.com',
        scopes: ['invoices:read'],
        audiences: ['https://billing.example/api'],
        metadata: { team: 'billing', tier: 2 },
        accessTokenTtlSeconds: 900,
      },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/api/v1/agents/${res.body.agentId}`);
    expect(res.body).toMatchObject({
      clientId: res.body.agentId,
      orgId: org.orgId,
      name: 'billing-agent',
      description: 'Reconciles invoices',
      owner: 'team-billing@example.com',
      status: 'active',
      scopes: ['invoices:read'],
      audiences: ['https://billing.example/api'],
      metadata: { team: 'billing', tier: 2 },
      accessTokenTtlSeconds: 900,
    });
    const stored = await t.idp.database.dataSource.query('SELECT org_id, name, scopes, metadata FROM agents WHERE id = $1', [res.body.agentId]);
    expect(stored).toEqual([{ org_id: org.orgId, name: 'billing-agent', scopes: ['invoices:read'], metadata: { team: 'billing', tier: 2 } }]);
  });

  it('names each invalid field, and stores nothing', async () => {
    const count = async () => Number((await t.idp.database.dataSource.query('SELECT count(*) AS n FROM agents'))[0].n);
    const before = await count();
    const cases: [unknown, string[]][] = [
      [{}, ['/name']],
      [{ name: '' }, ['/name']],
      [{ name: 'x'.repeat(101) }, ['/name']],
      [{ name: 'bad\u0000name' }, ['/name']],
      [{ name: 'ok', unknown: 1 }, ['/unknown']],
      [{ name: 'ok', scopes: 'orders:read' }, ['/scopes']],
      [{ name: 'ok', scopes: ['has space'] }, ['/scopes/0']],
      [{ name: 'ok', scopes: Array.from({ length: 51 }, (_, i) => `s${i}`) }, ['/scopes']],
      [{ name: 'ok', audiences: ['not a uri'] }, ['/audiences/0']],
      [{ name: 'ok', audiences: ['https://x.example/#frag'] }, ['/audiences/0']],
      [{ name: 'ok', accessTokenTtlSeconds: 5 }, ['/accessTokenTtlSeconds']],
      [{ name: 'ok', accessTokenTtlSeconds: '900' }, ['/accessTokenTtlSeconds']],
      [{ name: 'ok', metadata: { blob: 'x'.repeat(17 * 1024) } }, ['/metadata']],
      [{ name: 'ok', metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])) }, ['/metadata']],
      [{ name: "'; DROP TABLE agents; --", scopes: ["x' OR '1'='1"] }, ['/scopes/0']],
      [[], ['/']],
    ];
    for (const [body, fields] of cases) {
      const res = await api(t.url, org.token).post('/api/v1/agents', { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual(expect.arrayContaining(fields));
    }
    expect(await count()).toBe(before);
  });

  it('refuses operator scopes to an org admin, and grants them for operators', async () => {
    const res = await api(t.url, org.token).post('/api/v1/agents', { body: { name: 'x', scopes: ['agents:read', 'keys:write'] } });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ field: '/scopes/1', message: 'keys:write is an operator scope that this org cannot grant' }]);
    const byOperator = await api(t.url, await operatorToken(t)).post('/api/v1/agents', { body: { name: 'ops-bot', scopes: ['keys:read'] } });
    expect(byOperator.status).toBe(201);
  });

  it('answers bad bodies with 400, 413 and 415, as problem+json', async () => {
    const client = api(t.url, org.token);
    const notJson = await client.post('/api/v1/agents', { raw: { contentType: 'application/json', data: '{"name": ' } });
    expect(notJson.status).toBe(400);
    expect(notJson.body.code).toBe('invalid_json');
    const form = await client.post('/api/v1/agents', { raw: { contentType: 'application/x-www-form-urlencoded', data: 'name=x' } });
    expect(form.status).toBe(415);
    const huge = await client.post('/api/v1/agents', {
      raw: { contentType: 'application/json', data: JSON.stringify({ name: 'x', description: 'y'.repeat(1024 * 1024 + 10) }) },
    });
    expect(huge.status).toBe(413);
    expect(huge.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const none = await client.post('/api/v1/agents');
    expect(none.status).toBe(400);
  });
});

describe('GET /api/v1/agents', () => {
  it("pages through the caller's org only, with a status filter", async () => {
    const mine = await createOrg(t);
    for (let i = 0; i < 5; i++) await createAgent(t, mine.token, { name: `a${i}` });
    const client = api(t.url, mine.token);
    const page1 = await client.get('/api/v1/agents?limit=4&page=1');
    expect(page1.status).toBe(200);
    // Five agents plus the org's first admin.
    expect(page1.body).toMatchObject({ total: 6, page: 1, limit: 4 });
    expect(page1.body.data).toHaveLength(4);
    const page2 = await client.get('/api/v1/agents?limit=4&page=2');
    expect(page2.body.data).toHaveLength(2);
    const ids = [...page1.body.data, ...page2.body.data].map((a: { agentId: string }) => a.agentId);
    expect(new Set(ids).size).toBe(6);
    for (const a of [...page1.body.data, ...page2.body.data]) expect(a.orgId).toBe(mine.orgId);

    await client.patch(`/api/v1/agents/${ids[1]}`, { body: { status: 'suspended' } });
    const suspended = await client.get('/api/v1/agents?status=suspended');
    expect(suspended.body.data.map((a: { agentId: string }) => a.agentId)).toEqual([ids[1]]);
    expect(suspended.body.total).toBe(1);
  });

  it('refuses absurd pages and unknown filters', async () => {
    const client = api(t.url, org.token);
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'page=0', 'page=-1', 'status=deleted', 'sort=name', 'limit=1&limit=2']) {
      const res = await client.get(`/api/v1/agents?${query}`);
      expect(res.status).toBe(400);
      expect(res.body.errors[0].field).toMatch(/^query\//);
    }
  });
});

describe('GET, PATCH and DELETE /api/v1/agents/{agentId}', () => {
  it('reads one agent; an unknown or malformed id is 404', async () => {
    const agent = await createAgent(t, org.token, { name: 'reader' });
    const client = api(t.url, org.token);
    expect((await client.get(`/api/v1/agents/${agent.agentId}`)).body).toEqual(agent);
    expect((await client.get(`/api/v1/agents/${UNKNOWN}`)).status).toBe(404);
    expect((await client.get(`/api/v1/agents/not-a-uuid`)).status).toBe(404);
  });

  it('updates fields, suspends and reactivates', async () => {
    const agent = await createAgent(t, org.token, { name: 'patchable', description: 'before' });
    const client = api(t.url, org.token);
    const res = await client.patch(`/api/v1/agents/${agent.agentId}`, {
      body: { name: 'patched', description: null, scopes: ['a:b'], accessTokenTtlSeconds: 600 },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'patched', description: null, scopes: ['a:b'], accessTokenTtlSeconds: 600, createdAt: agent.createdAt });
    expect(new Date(res.body.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(agent.updatedAt).getTime());
    expect((await client.get(`/api/v1/agents/${agent.agentId}`)).body).toEqual(res.body);

    expect((await client.patch(`/api/v1/agents/${agent.agentId}`, { body: { status: 'suspended' } })).body.status).toBe('suspended');
    expect((await client.patch(`/api/v1/agents/${agent.agentId}`, { body: { status: 'active' } })).body.status).toBe('active');
    const invalid = await client.patch(`/api/v1/agents/${agent.agentId}`, { body: { status: 'decommissioned' } });
    expect(invalid.status).toBe(400);
    expect((await client.patch(`/api/v1/agents/${agent.agentId}`, { body: {} })).status).toBe(400);
  });

  it('decommissions for good: credentials revoked, later changes 409', async () => {
    const a = await agentWithSecret(t, org.token);
    const client = api(t.url, org.token);
    expect((await client.delete(`/api/v1/agents/${a.clientId}`)).status).toBe(204);
    expect((await client.get(`/api/v1/agents/${a.clientId}`)).body.status).toBe('decommissioned');
    const creds = await client.get(`/api/v1/agents/${a.clientId}/credentials`);
    expect(creds.body.data.map((c: { status: string }) => c.status)).toEqual(['revoked']);
    for (const res of [
      await client.patch(`/api/v1/agents/${a.clientId}`, { body: { status: 'active' } }),
      await client.delete(`/api/v1/agents/${a.clientId}`),
      await client.post(`/api/v1/agents/${a.clientId}/credentials`),
      await client.post(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}/rotate`),
    ]) {
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('agent_decommissioned');
    }
  });
});

describe('no one grants more than they hold', () => {
  it('an agent with agents:write cannot give itself or others scopes of the management API it lacks', async () => {
    const operator = api(t.url, await operatorToken(t));
    const helper = await operator.post('/api/v1/agents', {
      body: { name: 'helper', scopes: ['agents:read', 'agents:write'] },
    });
    const secret = (await operator.post(`/api/v1/agents/${helper.body.agentId}/credentials`)).body.clientSecret;
    const helperToken = await managementToken(t, helper.body.agentId, secret);
    const client = api(t.url, helperToken);
    const escalate = await client.patch(`/api/v1/agents/${helper.body.agentId}`, {
      body: { scopes: ['agents:read', 'agents:write', 'keys:write', 'orgs:write'] },
    });
    expect(escalate.status).toBe(400);
    expect(escalate.body.errors.map((e: { field: string }) => e.field)).toEqual(['/scopes/2', '/scopes/3']);
    const grantOther = await client.post('/api/v1/agents', { body: { name: 'x', scopes: ['audit:read'] } });
    expect(grantOther.status).toBe(400);
    expect((await operator.get(`/api/v1/agents/${helper.body.agentId}`)).body.scopes).toEqual(['agents:read', 'agents:write']);
    // Scopes of the org's own APIs are free to hand out.
    expect((await client.post('/api/v1/agents', { body: { name: 'y', scopes: ['orders:read', 'tokens:introspect'] } })).status).toBe(201);
  });

  it('a scope taken from an agent stops counting in the tokens it already holds', async () => {
    const operator = api(t.url, await operatorToken(t));
    const helper = await operator.post('/api/v1/agents', {
      body: { name: 'narrowed', scopes: ['agents:read', 'agents:write'] },
    });
    const secret = (await operator.post(`/api/v1/agents/${helper.body.agentId}/credentials`)).body.clientSecret;
    const helperToken = await managementToken(t, helper.body.agentId, secret);
    expect((await api(t.url, helperToken).post('/api/v1/agents', { body: { name: 'before' } })).status).toBe(201);
    await operator.patch(`/api/v1/agents/${helper.body.agentId}`, { body: { scopes: ['agents:read'] } });
    expect((await api(t.url, helperToken).post('/api/v1/agents', { body: { name: 'after' } })).status).toBe(403);
    expect((await api(t.url, helperToken).get('/api/v1/agents')).status).toBe(200);
  });
});

describe('tokenQuota', () => {
  const storedQuota = async (agentId: string) =>
    (await t.idp.database.dataSource.query('SELECT token_quota FROM agents WHERE id = $1', [agentId]))[0].token_quota;

  it('is stored and shown; null when unset; PATCH replaces it whole, and null clears it', async () => {
    const client = api(t.url, org.token);
    expect((await createAgent(t, org.token)).tokenQuota).toBeNull();
    const created = await client.post('/api/v1/agents', { body: { name: 'metered', tokenQuota: { perMinute: 10, perHour: 300 } } });
    expect(created.status).toBe(201);
    expect(created.body.tokenQuota).toEqual({ perMinute: 10, perHour: 300 });
    const id = created.body.agentId;
    expect(await storedQuota(id)).toEqual({ perMinute: 10, perHour: 300 });
    expect((await client.get(`/api/v1/agents/${id}`)).body.tokenQuota).toEqual({ perMinute: 10, perHour: 300 });

    const replaced = await client.patch(`/api/v1/agents/${id}`, { body: { tokenQuota: { perHour: 50 } } });
    expect(replaced.body.tokenQuota).toEqual({ perHour: 50 });
    expect(await storedQuota(id)).toEqual({ perHour: 50 });
    const events = await client.get(`/api/v1/audit?agentId=${id}&action=agent.updated`);
    expect(events.body.data[0].details).toEqual({ fields: ['tokenQuota'] });

    const cleared = await client.patch(`/api/v1/agents/${id}`, { body: { tokenQuota: null } });
    expect(cleared.body.tokenQuota).toBeNull();
    expect(await storedQuota(id)).toBeNull();
  });

  it('names each invalid field and stores nothing; an hourly bound below the per-minute one is refused', async () => {
    const client = api(t.url, org.token);
    const agent = await createAgent(t, org.token, { tokenQuota: { perMinute: 5 } });
    const count = async () => Number((await t.idp.database.dataSource.query('SELECT count(*) AS n FROM agents'))[0].n);
    const before = await count();
    const cases: [unknown, string][] = [
      [{}, '/tokenQuota'],
      [{ perMinute: 0 }, '/tokenQuota/perMinute'],
      [{ perMinute: 1_000_001 }, '/tokenQuota/perMinute'],
      [{ perHour: 2.5 }, '/tokenQuota/perHour'],
      [{ perMinute: '10' }, '/tokenQuota/perMinute'],
      [{ perDay: 100 }, '/tokenQuota/perDay'],
      [{ perMinute: 10, perHour: 9 }, '/tokenQuota/perHour'],
      ['lots', '/tokenQuota'],
    ];
    for (const [tokenQuota, field] of cases) {
      const create = await client.post('/api/v1/agents', { body: { name: 'bad-quota', tokenQuota } });
      const patch = await client.patch(`/api/v1/agents/${agent.agentId}`, { body: { tokenQuota } });
      for (const res of [create, patch]) {
        expect({ tokenQuota, status: res.status, code: res.body.code }).toEqual({ tokenQuota, status: 400, code: 'validation_failed' });
        expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      }
    }
    expect(await count()).toBe(before);
    expect(await storedQuota(agent.agentId)).toEqual({ perMinute: 5 });
  });
});
