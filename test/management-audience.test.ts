import { decodeJwt } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api } from './helpers/api.ts';
import { agentWithSecret, createOrg, managementToken, requestToken } from './factories.ts';

// The management API's audience, `<issuer>/api/v1`, is implied by the management scopes and never
// stored, so that moving the service to another PUBLIC_URL locks no admin out.

const REAL_DOMAIN = 'https://idp.example.com';

const audOf = (token: string) => decodeJwt(token).aud;

describe('the implied management audience', () => {
  let t: TestIdp;
  let org: Awaited<ReturnType<typeof createOrg>>;
  beforeAll(async () => {
    t = await startTestIdp();
    org = await createOrg(t);
  });
  afterAll(() => t.close());

  it('comes with a management scope: the default only when no audience is registered; an agent without one cannot ask for it', async () => {
    const management = `${t.url}/api/v1`;
    const helper = await agentWithSecret(t, org.token, { scopes: ['agents:read', 'orders:read'], audiences: ['https://orders.example'] });
    const byDefault = await requestToken(t, helper.clientId, helper.clientSecret);
    expect(audOf(byDefault.body.access_token)).toBe('https://orders.example');
    const asked = await requestToken(t, helper.clientId, helper.clientSecret, { resource: management });
    expect(asked.status).toBe(200);
    expect(audOf(asked.body.access_token)).toBe(management);
    expect((await api(t.url, asked.body.access_token).get('/api/v1/agents')).status).toBe(200);

    // Without a management scope the management audience is not implied, and DEFAULT_AUDIENCE stays the default.
    const plain = await agentWithSecret(t, org.token, { scopes: ['orders:read'] });
    expect((await requestToken(t, plain.clientId, plain.clientSecret, { resource: management })).body.error).toBe('invalid_target');
    expect(audOf((await requestToken(t, plain.clientId, plain.clientSecret)).body.access_token)).toBe(t.config.defaultAudience);

    // Taking the scope away takes the audience with it.
    await api(t.url, org.token).patch(`/api/v1/agents/${helper.clientId}`, { body: { scopes: ['orders:read'] } });
    expect((await requestToken(t, helper.clientId, helper.clientSecret, { resource: management })).body.error).toBe('invalid_target');
  });

  it('is not registered: POST and PATCH with it in audiences answer 400 and store nothing', async () => {
    const management = `${t.url}/api/v1`;
    const client = api(t.url, org.token);
    const before = (await client.get('/api/v1/agents?limit=100')).body.total;
    const created = await client.post('/api/v1/agents', {
      body: { name: 'pinned', scopes: ['agents:read'], audiences: ['https://orders.example', management] },
    });
    expect(created.status).toBe(400);
    expect(created.body).toMatchObject({
      code: 'validation_failed',
      errors: [{ field: '/audiences/1', message: expect.stringContaining('implied by the management scopes') }],
    });
    expect((await client.get('/api/v1/agents?limit=100')).body.total).toBe(before);

    const agent = await agentWithSecret(t, org.token, { scopes: ['agents:read'], audiences: ['https://orders.example'] });
    const patched = await client.patch(`/api/v1/agents/${agent.clientId}`, { body: { audiences: [management] } });
    expect(patched.status).toBe(400);
    expect(patched.body.errors.map((e: { field: string }) => e.field)).toEqual(['/audiences/0']);
    expect((await client.get(`/api/v1/agents/${agent.clientId}`)).body.audiences).toEqual(['https://orders.example']);
    // Another issuer's /api/v1 is just an audience like any other.
    expect((await client.patch(`/api/v1/agents/${agent.clientId}`, { body: { audiences: [`${REAL_DOMAIN}/api/v1`] } })).status).toBe(200);
    // An org's first admin registers none.
    const admin = await client.get(`/api/v1/agents/${org.admin.agentId}`);
    expect(admin.body.audiences).toEqual([]);
    expect(audOf(await managementToken(t, org.admin.clientId, org.admin.clientSecret))).toBe(management);
  });
});
