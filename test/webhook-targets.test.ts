import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { startReceiver, type Receiver } from './helpers/receiver.ts';
import { api } from './helpers/api.ts';
import { eventually } from './helpers/eventually.ts';
import { createOrg } from './factories.ts';

// The target rules with the production defaults (design/events.md, "Targets"): https only, and
// no loopback, private or link-local address, refused at registration when the URL names one
// and at connect time when a host name resolves to one. Redirects, time-outs and the read cap
// are src/webhooks/delivery-sender.test.ts.

let t: TestIdp;
let receiver: Receiver;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  receiver = await startReceiver();
  t = await startTestIdp();
  org = await createOrg(t);
});
afterAll(async () => {
  await t.close();
  await receiver.close();
});

describe('webhook targets, by default', () => {
  it('must be https: an http URL is 400 and nothing is created', async () => {
    const client = api(t.url, org.token);
    const res = await client.post('/api/v1/webhooks', { body: { url: 'http://hooks.example.com/idp', events: ['agent.created'] } });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ field: '/url', message: 'must be an https URL' }]);
    const patch = await client.post('/api/v1/webhooks', { body: { url: 'https://hooks.example.com/idp', events: ['agent.created'], enabled: false } });
    const changed = await client.patch(`/api/v1/webhooks/${patch.body.webhookId}`, { body: { url: 'http://hooks.example.com/idp' } });
    expect(changed.status).toBe(400);
    expect((await client.get(`/api/v1/webhooks/${patch.body.webhookId}`)).body.url).toBe('https://hooks.example.com/idp');
    await client.delete(`/api/v1/webhooks/${patch.body.webhookId}`);
    expect((await client.get('/api/v1/webhooks')).body.data).toEqual([]);
  });

  it('may not name a loopback, private or link-local address', async () => {
    for (const url of [
      'https://127.0.0.1/x',
      'https://10.0.0.7/x',
      'https://192.168.1.10/x',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/x',
      'https://[fd00::1]/x',
    ]) {
      const res = await api(t.url, org.token).post('/api/v1/webhooks', { body: { url, events: ['agent.created'] } });
      expect({ url, status: res.status, errors: res.body.errors }).toEqual({
        url,
        status: 400,
        errors: [{ field: '/url', message: 'must not point to a loopback, private or link-local address' }],
      });
    }
    expect((await api(t.url, org.token).get('/api/v1/webhooks')).body.data).toEqual([]);
  });

  it('are resolved at send time: a name that resolves to loopback is refused when connecting, and the receiver gets nothing', async () => {
    const client = api(t.url, org.token);
    const created = await client.post('/api/v1/webhooks', { body: { url: `https://localhost:${receiver.port}/rebound`, events: ['webhook.test'] } });
    expect(created.status).toBe(201);
    await client.post(`/api/v1/webhooks/${created.body.webhookId}/test`);
    await eventually(async () => Boolean((await client.get(`/api/v1/webhooks/${created.body.webhookId}/deliveries`)).body.data[0]?.lastError));
    const [delivery] = (await client.get(`/api/v1/webhooks/${created.body.webhookId}/deliveries`)).body.data;
    expect(delivery).toMatchObject({ status: 'pending', lastStatusCode: null });
    expect(delivery.lastError).toMatch(/^refused: localhost resolves to (127\.0\.0\.1|::1), a non-public address$/);
    expect(receiver.received).toEqual([]);
    await client.delete(`/api/v1/webhooks/${created.body.webhookId}`);
  });
});
