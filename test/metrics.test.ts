import { randomUUID } from 'node:crypto';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api } from './helpers/api.ts';
import { accessToken, agentWithSecret, createOrg, requestToken } from './factories.ts';
import { basicAuthHeader } from '../src/http/basic-auth.ts';

// GET /metrics on its own listener (METRICS_PORT), over real HTTP: the counters follow what the
// OAuth endpoints did, the request histogram names route templates only, METRICS_PORT=off opens
// nothing.

let t: TestIdp;
let metricsUrl: string;
beforeAll(async () => {
  t = await startTestIdp({ env: { METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' } });
  metricsUrl = (await t.idp.listenMetrics())!;
});
afterAll(() => t.close());

async function scrape(): Promise<string> {
  const res = await fetch(metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** The value of one series (`name{labels}`), 0 when absent. */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('GET /metrics', () => {
  it('counts tokens issued, denials by reason and introspections by outcome, from what was audited', async () => {
    const org = await createOrg(t);
    const x = await agentWithSecret(t, org.token);
    const before = await scrape();

    const token = await accessToken(t, x.clientId, x.clientSecret);
    expect((await requestToken(t, x.clientId, 'aidp_cs_wrong')).status).toBe(401);
    for (const candidate of [token, 'not-a-token']) {
      const res = await fetch(`${t.url}/token/introspect`, {
        method: 'POST',
        headers: { authorization: basicAuthHeader(x.clientId, x.clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: candidate }),
      });
      expect(res.status).toBe(200);
    }

    const after = await scrape();
    const delta = (series: string) => value(after, series) - value(before, series);
    expect(delta('agent_idp_tokens_issued_total{grant="client_credentials"}')).toBe(1);
    expect(delta('agent_idp_token_denials_total{reason="malformed_secret"}')).toBe(1);
    expect(delta('agent_idp_introspections_total{active="true"}')).toBe(1);
    expect(delta('agent_idp_introspections_total{active="false"}')).toBe(1);
  });

  it('counts exchanged tokens (RFC 8693) under their own grant', async () => {
    const org = await createOrg(t);
    const actor = await agentWithSecret(t, org.token);
    const subject = await agentWithSecret(t, org.token, { mayAct: [actor.clientId] });
    const subjectToken = await accessToken(t, subject.clientId, subject.clientSecret);
    const before = await scrape();
    const res = await fetch(`${t.url}/token`, {
      method: 'POST',
      headers: { authorization: basicAuthHeader(actor.clientId, actor.clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: subjectToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      }),
    });
    expect(res.status).toBe(200);
    const after = await scrape();
    expect(value(after, 'agent_idp_tokens_issued_total{grant="token_exchange"}') - value(before, 'agent_idp_tokens_issued_total{grant="token_exchange"}')).toBe(
      1,
    );
    expect(value(after, 'agent_idp_tokens_issued_total{grant="client_credentials"}')).toBe(
      value(before, 'agent_idp_tokens_issued_total{grant="client_credentials"}'),
    );
  });

  it('times requests by route template, never by raw path', async () => {
    const org = await createOrg(t);
    const x = await agentWithSecret(t, org.token);
    const unknownId = randomUUID();
    expect((await api(t.url, org.token).get(`/api/v1/agents/${x.clientId}`)).status).toBe(200);
    expect((await api(t.url, org.token).get(`/api/v1/agents/${unknownId}`)).status).toBe(404);
    // Refused by the chain's authentication, before the route's own handler.
    expect((await api(t.url).get(`/api/v1/agents/${x.clientId}`)).status).toBe(401);
    expect((await fetch(`${t.url}/no/such/${unknownId}`)).status).toBe(404);

    const text = await scrape();
    const count = (labels: string) => value(text, `agent_idp_http_request_duration_seconds_count{${labels}}`);
    expect(count('route="/api/v1/agents/:agentId",method="GET",status="200"')).toBeGreaterThanOrEqual(1);
    expect(count('route="/api/v1/agents/:agentId",method="GET",status="404"')).toBeGreaterThanOrEqual(1);
    expect(count('route="/api/v1/agents/:agentId",method="GET",status="401"')).toBeGreaterThanOrEqual(1);
    expect(count('route="/api/v1/agents",method="POST",status="201"')).toBeGreaterThanOrEqual(1);
    expect(count('route="/token",method="POST",status="200"')).toBeGreaterThanOrEqual(1);
    expect(count('route="unmatched",method="GET",status="404"')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/agent_idp_http_request_duration_seconds_bucket\{le="0\.005",route="\/api\/v1\/agents\/:agentId",method="GET",status="200"\} \d+/);
    // No id, and no raw path, in any label.
    expect(text).not.toContain(x.clientId);
    expect(text).not.toContain(unknownId);
    expect(text).not.toContain('/no/such');
  });

  it('counts 429s by endpoint when the throttles report them', async () => {
    const before = await scrape();
    for (const endpoint of ['token', 'token', 'management'] as const) t.idp.metrics.rateLimited(endpoint);
    const after = await scrape();
    // Every endpoint's series exists from the start.
    for (const endpoint of ['token', 'introspect', 'revoke', 'management']) expect(before).toContain(`agent_idp_rate_limited_total{endpoint="${endpoint}"}`);
    const delta = (endpoint: string) =>
      value(after, `agent_idp_rate_limited_total{endpoint="${endpoint}"}`) - value(before, `agent_idp_rate_limited_total{endpoint="${endpoint}"}`);
    expect([delta('token'), delta('introspect'), delta('revoke'), delta('management')]).toEqual([2, 0, 0, 1]);
  });

  it('reads the gauges when scraped, and shows the process metrics', async () => {
    // Audited (org.created, agent.created), and answered only once committed.
    await createOrg(t);
    const text = await scrape();
    expect(value(text, 'agent_idp_audit_queue_depth')).toBe(0);
    expect(value(text, 'agent_idp_audit_write_seconds_count')).toBeGreaterThan(0);
    const age = value(text, 'agent_idp_signing_key_age_seconds');
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(24 * 3600);
    // Embedded: nothing is cached, so nothing waits on a lease; on PostgreSQL the lease is held.
    expect(value(text, 'agent_idp_coherence_lease_ok')).toBe(1);
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(text).toMatch(new RegExp(`^${name} `, 'm'));
    }
  });

  it('answers nothing but GET /metrics', async () => {
    expect((await fetch(metricsUrl.replace(/\/metrics$/, '/'))).status).toBe(404);
    expect((await fetch(metricsUrl, { method: 'POST' })).status).toBe(405);
  });
});

describe('the metrics listener', () => {
  const tcpServers = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;

  it('starts with listen() on METRICS_PORT, and not at all with METRICS_PORT=off', async () => {
    const on = await startTestIdp({ env: { METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' } });
    const off = await startTestIdp({ env: { METRICS_PORT: 'off' } });
    try {
      let servers = tcpServers();
      await on.idp.listen(0, '127.0.0.1');
      expect(tcpServers()).toBe(servers + 2);
      expect((await fetch(on.idp.metricsUrl!)).status).toBe(200);

      servers = tcpServers();
      const url = await off.idp.listen(0, '127.0.0.1');
      expect(tcpServers()).toBe(servers + 1);
      expect(off.idp.metricsUrl).toBeUndefined();
      expect(await off.idp.listenMetrics()).toBeUndefined();
      expect(tcpServers()).toBe(servers + 1);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      await off.close();
      await on.close();
    }
  });
});
