import { Webhook } from 'standardwebhooks';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { startReceiver, type Receiver, type Received } from './helpers/receiver.ts';
import { api } from './helpers/api.ts';
import { eventually } from './helpers/eventually.ts';
import { agentWithSecret, createAgent, createOrg, requestToken } from './factories.ts';

// Webhooks over real HTTP (design/events.md): a receiver this test runs gets Standard Webhooks
// deliveries and checks them with the spec's own library; retries, rotation, the test event,
// credential expiry, disabling after long failure, org isolation, and the secret kept out of
// every answer, log line and row.

const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;
const HOUR = 3_600_000;

let t: TestIdp;
let receiver: Receiver;
let org: Awaited<ReturnType<typeof createOrg>>;
let other: Awaited<ReturnType<typeof createOrg>>;
/**
 * The app's wall clock runs this far ahead of the real one while a test drives it (expiries and
 * long failures come due without waiting). Tests run in random order: each that moves it puts
 * it back (aheadBy).
 */
let ahead = 0;
async function aheadBy<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  ahead = ms;
  try {
    return await fn();
  } finally {
    ahead = 0;
  }
}
let hooks = 0;
const secrets: string[] = [];

beforeAll(async () => {
  receiver = await startReceiver();
  t = await startTestIdp({
    env: { WEBHOOK_ALLOW_INSECURE_URLS: 'true', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_RETRY_BASE_SECONDS: '1' },
    clock: () => Date.now() + ahead,
  });
  [org, other] = [await createOrg(t), await createOrg(t)];
});
afterAll(async () => {
  await t.close();
  await receiver.close();
  // Not one log line of the whole file holds a webhook secret.
  for (const secret of secrets) expect(t.logs.join('\n')).not.toContain(secret.slice(6));
});

/** A new webhook of `org` at its own receiver path. */
async function webhook(events: string[], token = org.token) {
  const path = `/hook/${++hooks}`;
  const res = await api(t.url, token).post('/api/v1/webhooks', { body: { url: receiver.url + path, events, description: `hook ${hooks}` } });
  expect(res.status).toBe(201);
  secrets.push(res.body.secret);
  return { ...res.body, path } as { webhookId: string; secret: string; path: string; url: string };
}

/**
 * The delivery's payload, once the spec's library has verified it. The library also checks the
 * timestamp against Date.now (5 minutes either way); `whenSent`: check it as at the time it
 * names, for what was sent while the app's clock was driven ahead.
 */
function verified(secret: string, r: Received, whenSent = false): { type: string; timestamp: string; data: Record<string, any> } {
  if (whenSent) {
    const now = Date.now;
    const sent = Number(r.headers['webhook-timestamp']) * 1000;
    Date.now = () => sent;
    try {
      return verified(secret, r);
    } finally {
      Date.now = now;
    }
  }
  return new Webhook(secret).verify(r.body, {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  }) as { type: string; timestamp: string; data: Record<string, any> };
}

const deliveries = async (webhookId: string, query = '') => (await api(t.url, org.token).get(`/api/v1/webhooks/${webhookId}/deliveries${query}`)).body;

describe('webhook management', () => {
  it('creates a webhook with its secret shown once, lists and reads it without, changes and deletes it, audited without the secret', async () => {
    const client = api(t.url, org.token);
    const created = await client.post('/api/v1/webhooks', { body: { url: `${receiver.url}/crud`, events: ['agent.*', 'credential.expiring_soon'] } });
    expect(created.status).toBe(201);
    secrets.push(created.body.secret);
    expect(created.body).toMatchObject({ url: `${receiver.url}/crud`, events: ['agent.*', 'credential.expiring_soon'], description: null, enabled: true });
    expect(created.body.secret).toMatch(SECRET);
    const { webhookId } = created.body;

    const list = await client.get('/api/v1/webhooks');
    expect(list.status).toBe(200);
    expect(list.body.data.find((w: { webhookId: string }) => w.webhookId === webhookId)).not.toHaveProperty('secret');
    expect(list.text).not.toContain('whsec_');
    const one = await client.get(`/api/v1/webhooks/${webhookId}`);
    expect(one.status).toBe(200);
    expect(one.text).not.toContain('whsec_');

    const patched = await client.patch(`/api/v1/webhooks/${webhookId}`, { body: { enabled: false, events: ['agent.suspended'], description: 'paused' } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ enabled: false, events: ['agent.suspended'], description: 'paused' });
    expect(patched.text).not.toContain('whsec_');

    // Stored encrypted: the plaintext is in no column.
    const [row] = await t.idp.database.dataSource.query(`SELECT row_to_json(w)::text AS j FROM webhooks w WHERE id = $1`, [webhookId]);
    expect(row.j).not.toContain(created.body.secret.slice(6));

    expect((await client.delete(`/api/v1/webhooks/${webhookId}`)).status).toBe(204);
    expect((await client.get(`/api/v1/webhooks/${webhookId}`)).status).toBe(404);
    expect((await client.delete(`/api/v1/webhooks/${webhookId}`)).status).toBe(404);

    const audit = await client.get(`/api/v1/audit?action=webhook.created`);
    const event = audit.body.data.find((e: { target: { id: string } }) => e.target.id === webhookId);
    expect(event).toMatchObject({ action: 'webhook.created', actor: { type: 'agent', id: org.admin.clientId }, details: { url: `${receiver.url}/crud` } });
    const changed = await client.get(`/api/v1/audit?action=webhook.updated`);
    expect(changed.body.data.some((e: { target: { id: string } }) => e.target.id === webhookId)).toBe(true);
    const deleted = await client.get(`/api/v1/audit?action=webhook.deleted`);
    expect(deleted.body.data.some((e: { target: { id: string } }) => e.target.id === webhookId)).toBe(true);
  });

  it('refuses bad input with a 400 naming the field, and creates nothing', async () => {
    const client = api(t.url, org.token);
    const before = (await client.get('/api/v1/webhooks')).body.data.length;
    const cases: [unknown, string][] = [
      [{ url: `${receiver.url}/x`, events: ['agent.exploded'] }, '/events/0'],
      [{ url: `${receiver.url}/x`, events: ['token.issued'] }, '/events/0'],
      [{ url: `${receiver.url}/x`, events: ['nothing.*'] }, '/events/0'],
      [{ url: `${receiver.url}/x`, events: [] }, '/events'],
      [{ url: 'ftp://example.com/x', events: ['agent.created'] }, '/url'],
      [{ url: 'https://user:pw@example.com/x', events: ['agent.created'] }, '/url'],
      [{ url: `${receiver.url}/x`, events: ['agent.created'], secret: 'whsec_mine' }, '/secret'],
      [{ events: ['agent.created'] }, '/url'],
      [{ url: `${receiver.url}/x`, events: ['agent.created'], description: 'a\u0000b' }, '/description'],
    ];
    for (const [body, field] of cases) {
      const res = await client.post('/api/v1/webhooks', { body });
      expect({ body, status: res.status, fields: res.body.errors?.map((e: { field: string }) => e.field) }).toEqual({
        body,
        status: 400,
        fields: expect.arrayContaining([field]),
      });
    }
    expect((await client.get('/api/v1/webhooks')).body.data.length).toBe(before);
    const hook = await webhook(['agent.created']);
    const bad = await client.patch(`/api/v1/webhooks/${hook.webhookId}`, { body: { events: ['agent.nope'] } });
    expect(bad.status).toBe(400);
    expect((await client.get(`/api/v1/webhooks/${hook.webhookId}`)).body.events).toEqual(['agent.created']);
    expect((await client.get(`/api/v1/webhooks/${hook.webhookId}/deliveries?status=lost`)).status).toBe(400);
    expect((await client.get(`/api/v1/webhooks/${hook.webhookId}/deliveries?cursor=garbage`)).status).toBe(400);
    expect((await client.post(`/api/v1/webhooks/${hook.webhookId}/rotate-secret`, { body: { gracePeriodSeconds: -1 } })).status).toBe(400);
    await client.delete(`/api/v1/webhooks/${hook.webhookId}`);
  });

  it("keeps one org out of another's webhooks, deliveries and events", async () => {
    const hook = await webhook(['agent.created']);
    const intruder = api(t.url, other.token);
    for (const [method, path] of [
      ['get', `/api/v1/webhooks/${hook.webhookId}`],
      ['patch', `/api/v1/webhooks/${hook.webhookId}`],
      ['delete', `/api/v1/webhooks/${hook.webhookId}`],
      ['post', `/api/v1/webhooks/${hook.webhookId}/rotate-secret`],
      ['post', `/api/v1/webhooks/${hook.webhookId}/test`],
      ['get', `/api/v1/webhooks/${hook.webhookId}/deliveries`],
    ] as const) {
      const res = await intruder[method](path, { body: method === 'patch' ? { enabled: false } : undefined });
      expect({ path, method, status: res.status }).toEqual({ path, method, status: 404 });
    }
    expect((await intruder.get('/api/v1/webhooks')).body.data).toEqual([]);
    // The other org's events never reach this org's webhook.
    const theirs = await createAgent(t, other.token, { name: 'theirs' });
    const ours = await createAgent(t, org.token, { name: 'ours' });
    await eventually(() => receiver.to(hook.path).length >= 1);
    const got = receiver.to(hook.path).map((r) => verified(hook.secret, r).data.target.id);
    expect(got).toContain(ours.agentId);
    expect(got).not.toContain(theirs.agentId);
    const [{ n }] = await t.idp.database.dataSource.query(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_id = $1 AND org_id <> $2`, [
      hook.webhookId,
      org.orgId,
    ]);
    expect(n).toBe(0);
    expect((await api(t.url, org.token).get(`/api/v1/webhooks/${hook.webhookId}`)).body.enabled).toBe(true);
    await api(t.url, org.token).delete(`/api/v1/webhooks/${hook.webhookId}`);
  });
});

describe('deliveries', () => {
  it('are Standard Webhooks that the spec library verifies: the event id as webhook-id, the audit event as data', async () => {
    const hook = await webhook(['agent.*']);
    const agent = await createAgent(t, org.token, { name: 'watched' });
    await api(t.url, org.token).patch(`/api/v1/agents/${agent.agentId}`, { body: { status: 'suspended' } });
    await eventually(() => receiver.to(hook.path).length >= 2);
    const [created, suspended] = receiver.to(hook.path).map((r) => ({ r, payload: verified(hook.secret, r) }));
    expect(created.payload).toMatchObject({
      type: 'agent.created',
      data: {
        orgId: org.orgId,
        action: 'agent.created',
        actor: { type: 'agent', id: org.admin.clientId },
        target: { type: 'agent', id: agent.agentId },
        outcome: 'success',
      },
    });
    expect(suspended.payload.type).toBe('agent.suspended');
    expect(created.r.headers['webhook-id']).toBe(created.payload.data.eventId);
    expect(created.r.headers['content-type']).toBe('application/json');
    // The same event as the audit log holds.
    const audit = await api(t.url, org.token).get(`/api/v1/audit/${created.payload.data.eventId}`);
    expect(audit.body).toMatchObject({ action: 'agent.created', target: { id: agent.agentId } });
    expect(new Date(created.payload.timestamp).toISOString()).toBe(audit.body.occurredAt);
    // A wrong secret does not verify.
    expect(() => verified(`whsec_${Buffer.alloc(32, 1).toString('base64')}`, created.r)).toThrow();

    await eventually(async () => (await deliveries(hook.webhookId, '?status=delivered')).data.length === 2);
    const log = await deliveries(hook.webhookId);
    expect(log.data[0]).toMatchObject({ type: 'agent.suspended', status: 'delivered', attempts: 1, lastStatusCode: 200, lastError: null, nextAttemptAt: null });
    expect(log.data[0].deliveredAt).toEqual(expect.any(String));
    // Keyset pages.
    const first = await deliveries(hook.webhookId, '?limit=1');
    expect(first.data).toHaveLength(1);
    const second = await deliveries(hook.webhookId, `?limit=1&cursor=${first.nextCursor}`);
    expect(second.data.map((d: { type: string }) => d.type)).toEqual(['agent.created']);
    expect(second.nextCursor).toBeNull();
  });

  it('never carries token.issued or token.introspected; token.denied does go out', async () => {
    const hook = await webhook(['token.*']);
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    expect((await requestToken(t, a.clientId, `${a.clientSecret.slice(0, -2)}xx`)).status).toBe(401);
    await eventually(() => receiver.to(hook.path).length >= 1);
    expect(receiver.to(hook.path).map((r) => verified(hook.secret, r).type)).toEqual(['token.denied']);
    const [{ n }] = await t.idp.database.dataSource.query(
      `SELECT count(*)::int AS n FROM webhook_deliveries WHERE org_id = $1 AND type IN ('token.issued', 'token.introspected')`,
      [org.orgId],
    );
    expect(n).toBe(0);
  });

  it('are retried with backoff: a receiver failing twice gets the event on the third attempt, with the same webhook-id', async () => {
    const hook = await webhook(['agent.created']);
    receiver.answer(hook.path, [500, 503]);
    const agent = await createAgent(t, org.token, { name: 'retried' });
    await eventually(async () => (await deliveries(hook.webhookId)).data[0]?.status === 'delivered', { timeoutMs: 60_000 });
    const [delivery] = (await deliveries(hook.webhookId)).data;
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 200, lastError: null });
    const attempts = receiver.to(hook.path);
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(verified(hook.secret, attempts[2]).data.target.id).toBe(agent.agentId);
    // Each retry waited: the attempts' timestamps do not go backwards, and the second came at least a second after the first (base 1 s, half of it jitter).
    const times = attempts.map((r) => Number(r.headers['webhook-timestamp']));
    expect(times[1]).toBeGreaterThanOrEqual(times[0]);
    expect(times[2]).toBeGreaterThanOrEqual(times[1]);
  });

  it('POST /test sends a webhook.test event to that webhook alone', async () => {
    const hook = await webhook(['agent.suspended']);
    const res = await api(t.url, org.token).post(`/api/v1/webhooks/${hook.webhookId}/test`);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ type: 'webhook.test', status: 'pending', attempts: 0 });
    await eventually(() => receiver.to(hook.path).length === 1);
    const payload = verified(hook.secret, receiver.to(hook.path)[0]);
    expect(payload).toMatchObject({
      type: 'webhook.test',
      data: { eventId: res.body.eventId, orgId: org.orgId, target: { type: 'webhook', id: hook.webhookId } },
    });
  });

  it('rotate-secret shows the new secret once; in the grace period both secrets sign, without one only the new', async () => {
    const hook = await webhook(['webhook.test']);
    const client = api(t.url, org.token);
    const graced = await client.post(`/api/v1/webhooks/${hook.webhookId}/rotate-secret`, { body: { gracePeriodSeconds: 3600 } });
    expect(graced.status).toBe(200);
    expect(graced.body.secret).toMatch(SECRET);
    expect(graced.body.secret).not.toBe(hook.secret);
    secrets.push(graced.body.secret);
    await client.post(`/api/v1/webhooks/${hook.webhookId}/test`);
    await eventually(() => receiver.to(hook.path).length === 1);
    const during = receiver.to(hook.path)[0];
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verified(graced.body.secret, during).type).toBe('webhook.test');
    expect(verified(hook.secret, during).type).toBe('webhook.test');

    const abrupt = await client.post(`/api/v1/webhooks/${hook.webhookId}/rotate-secret`);
    expect(abrupt.status).toBe(200);
    secrets.push(abrupt.body.secret);
    await client.post(`/api/v1/webhooks/${hook.webhookId}/test`);
    await eventually(() => receiver.to(hook.path).length === 2);
    const after = receiver.to(hook.path)[1];
    expect(verified(abrupt.body.secret, after).type).toBe('webhook.test');
    expect(() => verified(graced.body.secret, after)).toThrow();
    const audit = await client.get('/api/v1/audit?action=webhook.updated');
    expect(audit.body.data.filter((e: { target: { id: string } }) => e.target.id === hook.webhookId)).toHaveLength(2);
    expect(audit.text).not.toContain('whsec_');
  });
});

describe('credential expiry', () => {
  it('sends credential.expiring_soon once, WEBHOOK_EXPIRY_WARNING_DAYS ahead, and credential.expired once it has passed', async () => {
    const hook = await webhook(['credential.expiring_soon', 'credential.expired']);
    const agent = await createAgent(t, org.token, { name: 'expiring' });
    const soon = await api(t.url, org.token).post(`/api/v1/agents/${agent.agentId}/credentials`, {
      body: { expiresAt: new Date(Date.now() + 3 * 24 * HOUR).toISOString() },
    });
    const later = await api(t.url, org.token).post(`/api/v1/agents/${agent.agentId}/credentials`, {
      body: { expiresAt: new Date(Date.now() + 30 * 24 * HOUR).toISOString() },
    });
    const job = t.idp.container.credentialExpiry;
    await job.run();
    await job.run();
    await eventually(() => receiver.to(hook.path).length >= 1);
    const first = receiver.to(hook.path).map((r) => verified(hook.secret, r));
    expect(first.map((p) => [p.type, p.data.target.id])).toEqual([['credential.expiring_soon', soon.body.credentialId]]);
    expect(first[0].data).toMatchObject({
      actor: { type: 'scheduler', id: 'credential-expiry' },
      details: { agentId: agent.agentId, expiresAt: soon.body.expiresAt },
    });

    // Four days on: the first has expired (announced once), the second is not yet within seven days.
    await aheadBy(4 * 24 * HOUR, async () => {
      await job.run();
      await job.run();
      await eventually(() => receiver.to(hook.path).length >= 2);
    });
    const all = receiver.to(hook.path).map((r) => verified(hook.secret, r, true));
    expect(all.map((p) => [p.type, p.data.target.id])).toEqual([
      ['credential.expiring_soon', soon.body.credentialId],
      ['credential.expired', soon.body.credentialId],
    ]);
    expect(all.some((p) => p.data.target.id === later.body.credentialId)).toBe(false);
    const audit = await api(t.url, org.token).get(`/api/v1/audit?action=credential.expired&agentId=${agent.agentId}`);
    expect(audit.body.data).toHaveLength(1);
  });
});

describe('an endpoint that keeps failing', () => {
  it('is retried for up to a day, then the delivery fails; with no success for WEBHOOK_DISABLE_AFTER_HOURS it is disabled and that is audited', async () => {
    const hook = await webhook(['agent.created']);
    receiver.always(hook.path, 500);
    await createAgent(t, org.token, { name: 'never-delivered' });
    // Attempts count from their claim; the outcome is recorded when the attempt is over.
    await eventually(async () => Boolean((await deliveries(hook.webhookId)).data[0]?.lastError));
    const pending = (await deliveries(hook.webhookId)).data[0];
    expect(pending).toMatchObject({ status: 'pending', lastStatusCode: 500, lastError: 'the endpoint answered 500' });
    expect(pending.nextAttemptAt).toEqual(expect.any(String));

    // 73 hours on: the next attempt fails too; the delivery is past its day, the endpoint past 72 h.
    await aheadBy(73 * HOUR, async () => {
      await eventually(async () => (await api(t.url, org.token).get(`/api/v1/webhooks/${hook.webhookId}`)).body.enabled === false);
      await eventually(async () => (await deliveries(hook.webhookId)).data[0]?.status === 'failed');
    });
    const disabled = (await api(t.url, org.token).get(`/api/v1/webhooks/${hook.webhookId}`)).body;
    expect(disabled.disabledReason).toMatch(/no successful delivery since/);
    const failed = (await deliveries(hook.webhookId)).data[0];
    expect(failed).toMatchObject({ status: 'failed', lastStatusCode: 500, nextAttemptAt: null });
    // At least the first attempt and the one 73 h on (on a slow machine a retry may come between).
    expect(failed.attempts).toBeGreaterThanOrEqual(2);
    const audit = await api(t.url, org.token).get('/api/v1/audit?action=webhook.disabled');
    expect(audit.body.data.find((e: { target: { id: string } }) => e.target.id === hook.webhookId)).toMatchObject({
      actor: { type: 'scheduler', id: 'webhook-delivery' },
      details: { reason: 'failing', disableAfterHours: 72 },
    });
    // A disabled webhook gets nothing new; re-enabled, it does.
    const seen = receiver.to(hook.path).length;
    await createAgent(t, org.token, { name: 'while-disabled' });
    receiver.always(hook.path, 200);
    const reenabled = await api(t.url, org.token).patch(`/api/v1/webhooks/${hook.webhookId}`, { body: { enabled: true } });
    expect(reenabled.body).toMatchObject({ enabled: true, disabledReason: null });
    const back = await createAgent(t, org.token, { name: 'after-reenabling' });
    await eventually(() => receiver.to(hook.path).some((r) => verified(hook.secret, r, true).data.target.id === back.agentId));
    expect(
      receiver
        .to(hook.path)
        .slice(seen)
        .map((r) => verified(hook.secret, r).data.target.id),
    ).toEqual([back.agentId]);
  });
});
