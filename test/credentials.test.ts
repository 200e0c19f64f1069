import { DAY_MS } from '../src/lib/time.ts';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api } from './helpers/api.ts';
import { agentWithSecret, createOrg } from './factories.ts';

let t: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  t = await startTestIdp();
  org = await createOrg(t);
});
afterAll(() => t.close());

const SECRET_SHAPE = /^aidp_cs_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/;

describe('POST /api/v1/agents/{agentId}/credentials', () => {
  it('creates a secret shown once, stored only as a bcrypt hash', async () => {
    const a = await agentWithSecret(t, org.token);
    const expiresAt = new Date(Date.now() + DAY_MS).toISOString();
    const res = await api(t.url, org.token).post(`/api/v1/agents/${a.clientId}/credentials`, { body: { expiresAt } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ clientId: a.clientId, status: 'active', expiresAt, revokedAt: null, rotatedAt: null });
    expect(res.body.clientSecret).toMatch(SECRET_SHAPE);
    expect(res.body.clientSecret).toContain(res.body.credentialId.replace(/-/g, ''));
    const [row] = await t.idp.database.dataSource.query('SELECT secret_hash FROM credentials WHERE id = $1', [res.body.credentialId]);
    expect(row.secret_hash).toMatch(/^\$2[aby]\$04\$/);
    expect(row.secret_hash).not.toContain(res.body.clientSecret.slice(-43));
  });

  it('refuses an expiry in the past or not a date', async () => {
    const a = await agentWithSecret(t, org.token);
    const client = api(t.url, org.token);
    for (const expiresAt of [new Date(Date.now() - 1000).toISOString(), 'tomorrow', 12345]) {
      const res = await client.post(`/api/v1/agents/${a.clientId}/credentials`, { body: { expiresAt } });
      expect(res.status).toBe(400);
      expect(res.body.errors[0].field).toBe('/expiresAt');
    }
    expect((await client.post(`/api/v1/agents/${a.clientId}/credentials`, { body: { secret: 'mine' } })).status).toBe(400);
    expect((await client.get(`/api/v1/agents/${a.clientId}/credentials`)).body.total).toBe(1);
  });
});

describe('GET /api/v1/agents/{agentId}/credentials', () => {
  it('lists credentials with their states and never a secret', async () => {
    const a = await agentWithSecret(t, org.token);
    const client = api(t.url, org.token);
    const second = await client.post(`/api/v1/agents/${a.clientId}/credentials`);
    const third = await client.post(`/api/v1/agents/${a.clientId}/credentials`);
    await client.delete(`/api/v1/agents/${a.clientId}/credentials/${second.body.credentialId}`);
    await t.changeBySql(`UPDATE credentials SET expires_at = now() - interval '1 minute' WHERE id = $1`, [third.body.credentialId]);

    const all = await client.get(`/api/v1/agents/${a.clientId}/credentials`);
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(3);
    expect(all.body.data.map((c: { status: string }) => c.status)).toEqual(['active', 'revoked', 'expired']);
    for (const secret of [a.clientSecret, second.body.clientSecret, third.body.clientSecret]) {
      expect(all.text).not.toContain(secret);
      expect(all.text).not.toContain(secret.slice(-43));
    }
    expect(all.text).not.toMatch(/clientSecret|secret_hash|\$2[aby]\$/);

    for (const status of ['active', 'revoked', 'expired']) {
      const filtered = await client.get(`/api/v1/agents/${a.clientId}/credentials?status=${status}`);
      expect(filtered.body.data.map((c: { status: string }) => c.status)).toEqual([status]);
    }
    expect((await client.get(`/api/v1/agents/${a.clientId}/credentials?limit=1&page=3`)).body.data).toHaveLength(1);
  });
});

describe('rotate and revoke', () => {
  it('rotates with a grace period that the credential reports', async () => {
    const a = await agentWithSecret(t, org.token);
    const res = await api(t.url, org.token).post(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}/rotate`, {
      body: { gracePeriodSeconds: 3600 },
    });
    expect(res.status).toBe(200);
    expect(res.body.clientSecret).toMatch(SECRET_SHAPE);
    expect(res.body.rotatedAt).not.toBeNull();
    expect(new Date(res.body.previousSecretExpiresAt).getTime()).toBeGreaterThan(Date.now() + 3_500_000);
    for (const gracePeriodSeconds of [-1, 604801, 'soon']) {
      const bad = await api(t.url, org.token).post(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}/rotate`, {
        body: { gracePeriodSeconds },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.errors[0].field).toBe('/gracePeriodSeconds');
    }
  });

  it('revokes; a revoked credential cannot be rotated (409); revoking again changes nothing', async () => {
    const a = await agentWithSecret(t, org.token);
    const client = api(t.url, org.token);
    const path = `/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}`;
    expect((await client.delete(path)).status).toBe(204);
    const [row] = await t.idp.database.dataSource.query('SELECT status, revoked_at FROM credentials WHERE id = $1', [a.credential.credentialId]);
    expect(row.status).toBe('revoked');
    const rotate = await client.post(`${path}/rotate`);
    expect(rotate.status).toBe(409);
    expect(rotate.body.code).toBe('credential_revoked');
    expect((await client.delete(path)).status).toBe(204);
    const [after] = await t.idp.database.dataSource.query('SELECT revoked_at FROM credentials WHERE id = $1', [a.credential.credentialId]);
    expect(after.revoked_at).toEqual(row.revoked_at);
  });

  it('an expired credential cannot be rotated (409)', async () => {
    const a = await agentWithSecret(t, org.token);
    await t.changeBySql(`UPDATE credentials SET expires_at = now() - interval '1 second' WHERE id = $1`, [a.credential.credentialId]);
    const res = await api(t.url, org.token).post(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}/rotate`);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('credential_expired');
  });

  it('404 for a credential of another agent, or unknown', async () => {
    const a = await agentWithSecret(t, org.token);
    const b = await agentWithSecret(t, org.token);
    const client = api(t.url, org.token);
    expect((await client.delete(`/api/v1/agents/${a.clientId}/credentials/${b.credential.credentialId}`)).status).toBe(404);
    expect((await client.post(`/api/v1/agents/${a.clientId}/credentials/${b.credential.credentialId}/rotate`)).status).toBe(404);
    expect((await client.delete(`/api/v1/agents/${a.clientId}/credentials/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await client.get(`/api/v1/agents/00000000-0000-4000-8000-000000000000/credentials`)).status).toBe(404);
    const [row] = await t.idp.database.dataSource.query('SELECT status FROM credentials WHERE id = $1', [b.credential.credentialId]);
    expect(row.status).toBe('active');
  });
});
