import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api } from './helpers/api.ts';
import { itOnPostgres } from './helpers/postgres-only.ts';
import { agentWithSecret, createAgent, createCredential, createOrg, operatorToken } from './factories.ts';

// The org's count limits (PATCH /api/v1/orgs/{orgId}): past one, a create answers 409
// limit_reached naming the limit, and creates nothing; concurrent creates cannot overshoot.

let t: TestIdp;

beforeAll(async () => {
  t = await startTestIdp();
});
afterAll(() => t.close());

async function limitedOrg(limits: Record<string, number>) {
  const org = await createOrg(t);
  const res = await api(t.url, await operatorToken(t)).patch(`/api/v1/orgs/${org.orgId}`, { body: { limits } });
  if (res.status !== 200) throw new Error(`limits not set: ${res.text}`);
  return org;
}

const sql = async (query: string, params: unknown[]) => Number((await t.idp.database.dataSource.query(query, params))[0].n);
const agentsOf = (orgId: string) => sql('SELECT count(*) AS n FROM agents WHERE org_id = $1', [orgId]);
const credentialsOf = (agentId: string) => sql('SELECT count(*) AS n FROM credentials WHERE agent_id = $1', [agentId]);
const eventsOf = (orgId: string, action: string) => sql('SELECT count(*) AS n FROM audit_events WHERE org_id = $1 AND action = $2', [orgId, action]);

function expectLimitReached(res: { status: number; body: any }, limit: string) {
  expect({ status: res.status, code: res.body.code, limit: res.body.limit }).toEqual({ status: 409, code: 'limit_reached', limit });
  expect(res.body.detail).toContain(limit);
}

describe('maxAgents', () => {
  it('counts the agents that are not decommissioned (suspended ones too); past it, 409 and nothing created', async () => {
    // The admin created with the org is one of the three.
    const org = await limitedOrg({ maxAgents: 3 });
    const client = api(t.url, org.token);
    await createAgent(t, org.token);
    const suspended = await createAgent(t, org.token);
    await client.patch(`/api/v1/agents/${suspended.agentId}`, { body: { status: 'suspended' } });

    const refused = await client.post('/api/v1/agents', { body: { name: 'fourth' } });
    expectLimitReached(refused, 'maxAgents');
    expect(await agentsOf(org.orgId)).toBe(3);
    expect(await eventsOf(org.orgId, 'agent.created')).toBe(2);

    // Decommissioning frees a place.
    await client.delete(`/api/v1/agents/${suspended.agentId}`);
    expect((await client.post('/api/v1/agents', { body: { name: 'fourth' } })).status).toBe(201);
    expectLimitReached(await client.post('/api/v1/agents', { body: { name: 'fifth' } }), 'maxAgents');
  });

  it('lowered below what the org holds, keeps what exists and refuses the next', async () => {
    const org = await createOrg(t);
    await createAgent(t, org.token);
    await createAgent(t, org.token);
    await api(t.url, await operatorToken(t)).patch(`/api/v1/orgs/${org.orgId}`, { body: { limits: { maxAgents: 1 } } });
    expectLimitReached(await api(t.url, org.token).post('/api/v1/agents', { body: { name: 'x' } }), 'maxAgents');
    expect((await api(t.url, org.token).get('/api/v1/agents')).body.total).toBe(3);
  });

  itOnPostgres(
    'holds under concurrent creates: 5 at once with room for 2 create exactly 2',
    'one connection runs one transaction at a time: no race',
    async () => {
      const org = await limitedOrg({ maxAgents: 3 });
      const client = api(t.url, org.token);
      const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => client.post('/api/v1/agents', { body: { name: `racer-${i}` } })));
      expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 409, 409, 409]);
      for (const r of answers.filter((a) => a.status === 409)) expectLimitReached(r, 'maxAgents');
      expect(await agentsOf(org.orgId)).toBe(3);
    },
  );
});

describe('maxActiveCredentialsPerAgent', () => {
  it("counts the agent's active, unexpired credentials; rotating adds none; past it, 409 and nothing created", async () => {
    const org = await limitedOrg({ maxActiveCredentialsPerAgent: 2 });
    const client = api(t.url, org.token);
    const a = await agentWithSecret(t, org.token);
    const second = await createCredential(t, org.token, a.clientId);

    const refused = await client.post(`/api/v1/agents/${a.clientId}/credentials`);
    expectLimitReached(refused, 'maxActiveCredentialsPerAgent');
    expect(refused.text).not.toMatch(/clientSecret/);
    expect(await credentialsOf(a.clientId)).toBe(2);

    const rotated = await client.post(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}/rotate`, { body: { gracePeriodSeconds: 60 } });
    expect(rotated.status).toBe(200);
    expect(await credentialsOf(a.clientId)).toBe(2);

    // A revoked and an expired credential free their places.
    await client.delete(`/api/v1/agents/${a.clientId}/credentials/${second.credentialId}`);
    const third = await createCredential(t, org.token, a.clientId);
    await t.changeBySql(`UPDATE credentials SET expires_at = now() - interval '1 second' WHERE id = $1`, [third.credentialId]);
    await createCredential(t, org.token, a.clientId);
    expectLimitReached(await client.post(`/api/v1/agents/${a.clientId}/credentials`), 'maxActiveCredentialsPerAgent');

    // The limit is per agent: another agent of the org has its own places.
    const b = await agentWithSecret(t, org.token);
    await createCredential(t, org.token, b.clientId);
    expect(await eventsOf(org.orgId, 'credential.created')).toBe(6);
  });

  itOnPostgres(
    'holds under concurrent creates: 5 at once with room for 2 create exactly 2',
    'one connection runs one transaction at a time: no race',
    async () => {
      const org = await limitedOrg({ maxActiveCredentialsPerAgent: 3 });
      const a = await agentWithSecret(t, org.token);
      const client = api(t.url, org.token);
      const answers = await Promise.all(Array.from({ length: 5 }, () => client.post(`/api/v1/agents/${a.clientId}/credentials`)));
      expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 409, 409, 409]);
      expect(await credentialsOf(a.clientId)).toBe(3);
    },
  );
});

describe('no limits', () => {
  it('a new org has none: creates are not counted', async () => {
    const org = await createOrg(t);
    const a = await agentWithSecret(t, org.token);
    for (let i = 0; i < 3; i++) await createCredential(t, org.token, a.clientId);
    expect(await credentialsOf(a.clientId)).toBe(4);
  });
});
