import { basicAuthHeader } from '../src/http/basic-auth.ts';
import { DAY_MS } from '../src/lib/time.ts';
import { decodeJwt } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { agentWithSecret, createOrg, managementToken, operatorToken, requestToken } from './factories.ts';

let t: TestIdp;
beforeAll(async () => {
  t = await startTestIdp();
});
afterAll(() => t.close());

type Event = {
  eventId: string;
  action: string;
  orgId: string | null;
  actor: { type: string; id: string | null };
  target: { type: string; id: string | null };
  outcome: string;
  requestId: string | null;
  details: Record<string, unknown>;
};

/** Every event the token may see, newest first, following the cursor. */
async function allEvents(token: string, query = ''): Promise<Event[]> {
  const events: Event[] = [];
  let path = `/api/v1/audit?limit=200${query}`;
  for (;;) {
    const res = await api(t.url, token).get(path);
    expect(res.status).toBe(200);
    events.push(...res.body.data);
    if (!res.body.nextCursor) return events;
    path = `/api/v1/audit?limit=200${query}&cursor=${encodeURIComponent(res.body.nextCursor)}`;
  }
}

const form = (path: string, params: Record<string, string>, auth: { clientId: string; clientSecret: string }) =>
  call(t.url, 'POST', path, {
    raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams(params).toString() },
    headers: { authorization: basicAuthHeader(auth.clientId, auth.clientSecret) },
  });

describe('the audit log', () => {
  it('records every action, with its actor, target and request id', async () => {
    const org = await createOrg(t);
    const admin = api(t.url, org.token);
    const adminId = org.admin.agentId;

    const created = await admin.post('/api/v1/agents', { body: { name: 'audited', scopes: ['orders:read'], audiences: ['https://orders.example'] } });
    const agentId = created.body.agentId;
    await admin.patch(`/api/v1/agents/${agentId}`, { body: { description: 'changed' } });
    await admin.patch(`/api/v1/agents/${agentId}`, { body: { status: 'suspended' } });
    await admin.patch(`/api/v1/agents/${agentId}`, { body: { status: 'active' } });
    const credential = (await admin.post(`/api/v1/agents/${agentId}/credentials`)).body;
    const rotated = (await admin.post(`/api/v1/agents/${agentId}/credentials/${credential.credentialId}/rotate`, { body: { gracePeriodSeconds: 60 } })).body;
    const issued = await requestToken(t, agentId, rotated.clientSecret, { scope: 'orders:read' });
    const jti = decodeJwt(issued.body.access_token).jti;
    await requestToken(t, agentId, rotated.clientSecret, { scope: 'orders:write' });
    await requestToken(t, agentId, rotated.clientSecret.slice(0, -3) + 'xyz');
    const rs = await agentWithSecret(t, org.token, { scopes: ['tokens:introspect'] });
    await form('/token/introspect', { token: issued.body.access_token }, rs);
    await form('/token/revoke', { token: issued.body.access_token }, { clientId: agentId, clientSecret: rotated.clientSecret });
    const second = (await admin.post(`/api/v1/agents/${agentId}/credentials`)).body;
    await admin.delete(`/api/v1/agents/${agentId}/credentials/${second.credentialId}`);
    await requestToken(t, agentId, second.clientSecret);
    const denied = await admin.get('/api/v1/orgs');
    expect(denied.status).toBe(403);
    const decommissioned = await admin.delete(`/api/v1/agents/${agentId}`);
    await requestToken(t, agentId, rotated.clientSecret);

    const events = await allEvents(org.token);
    const of = (action: string) => events.filter((e) => e.action === action);
    const by = { type: 'agent', id: adminId };
    expect(of('agent.created').find((e) => e.target.id === agentId)).toMatchObject({
      actor: by,
      orgId: org.orgId,
      outcome: 'success',
      requestId: created.headers.get('x-request-id'),
    });
    expect(of('agent.updated')[0]).toMatchObject({ actor: by, target: { type: 'agent', id: agentId }, details: { fields: ['description'] } });
    expect(of('agent.suspended')[0]).toMatchObject({ actor: by, target: { id: agentId } });
    expect(of('agent.reactivated')[0]).toMatchObject({ actor: by, target: { id: agentId } });
    expect(of('credential.created').map((e) => e.target.id)).toEqual(expect.arrayContaining([credential.credentialId, second.credentialId]));
    expect(of('credential.rotated')[0]).toMatchObject({
      actor: by,
      target: { type: 'credential', id: credential.credentialId },
      details: { gracePeriodSeconds: 60 },
    });
    expect(of('credential.revoked').map((e) => e.target.id)).toContain(second.credentialId);
    expect(of('token.issued').find((e) => e.target.id === jti)).toMatchObject({
      actor: { type: 'client', id: agentId },
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      details: { jti, scope: 'orders:read', aud: 'https://orders.example', credentialId: credential.credentialId, kid: expect.any(String) },
    });
    const reasons = of('token.denied')
      .filter((e) => e.actor.id === agentId)
      .map((e) => e.details.reason);
    expect(reasons).toEqual(expect.arrayContaining(['invalid_scope', 'bad_secret', 'credential_revoked', 'agent_decommissioned']));
    expect(of('token.denied').every((e) => typeof e.requestId === 'string')).toBe(true);
    expect(of('token.introspected')[0]).toMatchObject({
      actor: { type: 'client', id: rs.clientId },
      target: { type: 'token', id: jti },
      details: { active: true },
    });
    expect(of('token.revoked')[0]).toMatchObject({ actor: { type: 'client', id: agentId }, target: { type: 'token', id: jti }, details: { revoked: true } });
    expect(of('admin.denied')[0]).toMatchObject({
      actor: by,
      outcome: 'failure',
      target: { type: 'route', id: 'GET /api/v1/orgs' },
      requestId: denied.headers.get('x-request-id'),
    });
    expect(of('agent.decommissioned')[0]).toMatchObject({ actor: by, target: { id: agentId }, requestId: decommissioned.headers.get('x-request-id') });

    // Newest first.
    const times = events.map((e) => (e as unknown as { occurredAt: string }).occurredAt);
    expect([...times].sort().reverse()).toEqual(times);
    // One event, by id.
    const one = await admin.get(`/api/v1/audit/${of('agent.suspended')[0].eventId}`);
    expect(one.body).toEqual(of('agent.suspended')[0]);
  });

  it("records the operators' key and org actions in the root org", async () => {
    const operator = api(t.url, await operatorToken(t));
    const key = await operator.post('/api/v1/keys', { body: { alg: 'ES256' } });
    const rotated = await operator.post('/api/v1/keys/rotate');
    await operator.post(`/api/v1/keys/${key.body.kid}/revoke`).catch(() => undefined);
    const created = await createOrg(t);
    const events = await allEvents(await operatorToken(t));
    expect(events.find((e) => e.action === 'key.created' && e.target.id === key.body.kid)).toMatchObject({
      actor: { type: 'agent', id: t.operator.clientId },
      details: { alg: 'ES256' },
    });
    expect(events.find((e) => e.action === 'key.rotated')).toMatchObject({ target: { type: 'key', id: rotated.body.active.kid } });
    expect(events.find((e) => e.action === 'org.created' && e.target.id === created.orgId)).toMatchObject({
      actor: { type: 'agent', id: t.operator.clientId },
    });
  });

  it('each org sees only its own events', async () => {
    const a = await createOrg(t);
    const b = await createOrg(t);
    await api(t.url, a.token).post('/api/v1/agents', { body: { name: 'only-in-a' } });
    const seenByB = await allEvents(b.token);
    expect(seenByB.every((e) => e.orgId === b.orgId)).toBe(true);
    const seenByA = await allEvents(a.token);
    expect(seenByA.some((e) => e.action === 'agent.created')).toBe(true);
    const foreign = seenByA[0].eventId;
    expect((await api(t.url, b.token).get(`/api/v1/audit/${foreign}`)).status).toBe(404);
    const root = await allEvents(await operatorToken(t));
    expect(root.some((e) => e.orgId === a.orgId)).toBe(false);
  });

  it('filters by agent, action and outcome, and exports NDJSON', async () => {
    const org = await createOrg(t);
    const x = await agentWithSecret(t, org.token);
    await requestToken(t, x.clientId, x.clientSecret);
    await requestToken(t, x.clientId, 'aidp_cs_wrong');
    const issued = await allEvents(org.token, `&agentId=${x.clientId}&action=token.issued`);
    expect(issued).toHaveLength(1);
    const failures = await allEvents(org.token, `&agentId=${x.clientId}&outcome=failure`);
    expect(failures.map((e) => e.action)).toEqual(['token.denied']);
    const exported = await api(t.url, org.token).get(`/api/v1/audit/export?agentId=${x.clientId}`);
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = exported.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((e) => e.action)).toEqual((await allEvents(org.token, `&agentId=${x.clientId}`)).map((e) => e.action));
  });

  it('answers nothing without its event: a failed audit write fails the request and hands out no token', async () => {
    const org = await createOrg(t);
    const x = await agentWithSecret(t, org.token);
    const ds = t.idp.database.dataSource;
    await ds.query('ALTER TABLE audit_events RENAME TO audit_events_away');
    try {
      const token = await requestToken(t, x.clientId, x.clientSecret);
      expect(token.status).toBeGreaterThanOrEqual(500);
      expect(token.body.access_token).toBeUndefined();
      const created = await api(t.url, org.token).post('/api/v1/agents', { body: { name: 'unaudited' } });
      expect(created.status).toBe(500);
      expect(created.body.requestId).toBe(created.headers.get('x-request-id'));
    } finally {
      await ds.query('ALTER TABLE audit_events_away RENAME TO audit_events');
    }
    expect((await requestToken(t, x.clientId, x.clientSecret)).status).toBe(200);
  });

  it('refuses a window older than the retention period, and a tampered cursor', async () => {
    const operator = api(t.url, await operatorToken(t));
    const old = new Date(Date.now() - 91 * DAY_MS).toISOString();
    const res = await operator.get(`/api/v1/audit?from=${encodeURIComponent(old)}`);
    expect(res.status).toBe(400);
    expect(res.body.errors[0].field).toBe('query/from');
    expect((await operator.get('/api/v1/audit?cursor=bm90LWEtY3Vyc29y')).status).toBe(400);
    expect((await operator.get('/api/v1/audit?limit=201')).status).toBe(400);
  });

  it('requires audit:read', async () => {
    const narrow = await managementToken(t, t.operator.clientId, t.operator.clientSecret, 'agents:read');
    expect((await api(t.url, narrow).get('/api/v1/audit')).status).toBe(403);
    expect((await api(t.url).get('/api/v1/audit')).status).toBe(401);
  });
});
