import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { describeOnPostgres } from './helpers/postgres-only.ts';
import { api } from './helpers/api.ts';
import { agentWithSecret, createCredential, createOrg, managementToken, requestToken } from './factories.ts';
import { DAY_MS } from '../src/lib/time.ts';

// Token quotas at /token and GET /api/v1/usage (design/operations.md), over real HTTP. The
// clock of quotas and counters is driven; quotas and org limits are set in the database as an
// operator would (their own API has tests of its own).

let now = Date.UTC(2026, 11, 1, 12, 0, 30);
const clock = () => now;

async function setQuota(idp: TestIdp, agentId: string, quota: object | null) {
  await idp.changeBySql('UPDATE agents SET token_quota = $2 WHERE id = $1', [agentId, quota === null ? null : JSON.stringify(quota)]);
}

async function deniedEvents(idp: TestIdp, agentId: string) {
  await idp.idp.auditWriter.flush();
  return idp.idp.database.dataSource.query(`SELECT details FROM audit_events WHERE action = 'token.denied' AND agent_id = $1`, [agentId]);
}

describe('per-agent token quotas', () => {
  let idp: TestIdp;
  let org: Awaited<ReturnType<typeof createOrg>>;

  beforeAll(async () => {
    idp = await startTestIdp({ clock });
    org = await createOrg(idp);
  });
  afterAll(() => idp?.close());

  it('answers 429 too_many_requests with Retry-After past perMinute, records it once per window, and lets the agent in again next minute', async () => {
    const agent = await agentWithSecret(idp, org.token);
    await setQuota(idp, agent.clientId, { perMinute: 3 });
    for (let i = 0; i < 3; i++) expect((await requestToken(idp, agent.clientId, agent.clientSecret)).status).toBe(200);

    const refused = await fetch(`${idp.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: agent.clientId, client_secret: agent.clientSecret }),
    });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ error: 'too_many_requests', error_description: expect.stringMatching(/quota of 3 tokens per minute/) });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await requestToken(idp, agent.clientId, agent.clientSecret)).status).toBe(429);

    const denied = await deniedEvents(idp, agent.clientId);
    expect(denied).toEqual([{ details: expect.objectContaining({ error: 'too_many_requests', reason: 'quota_exceeded' }) }]);

    now += retryAfter * 1000;
    expect((await requestToken(idp, agent.clientId, agent.clientSecret)).status).toBe(200);
  });

  it('holds perHour across minutes', async () => {
    const agent = await agentWithSecret(idp, org.token);
    await setQuota(idp, agent.clientId, { perMinute: 10, perHour: 2 });
    expect((await requestToken(idp, agent.clientId, agent.clientSecret)).status).toBe(200);
    now += 60_000;
    expect((await requestToken(idp, agent.clientId, agent.clientSecret)).status).toBe(200);
    now += 60_000;
    const refused = await requestToken(idp, agent.clientId, agent.clientSecret);
    expect(refused.status).toBe(429);
    expect(refused.body.error_description).toMatch(/quota of 2 tokens per hour/);
  });

  it("takes the org's tokensPerMinutePerAgent for agents without a per-minute quota of their own", async () => {
    const other = await createOrg(idp);
    await idp.changeBySql(`UPDATE orgs SET limits = '{"tokensPerMinutePerAgent": 2}' WHERE id = $1`, [other.orgId]);
    const plain = await agentWithSecret(idp, other.token);
    const own = await agentWithSecret(idp, other.token);
    await setQuota(idp, own.clientId, { perMinute: 4 });
    for (let i = 0; i < 2; i++) expect((await requestToken(idp, plain.clientId, plain.clientSecret)).status).toBe(200);
    expect((await requestToken(idp, plain.clientId, plain.clientSecret)).status).toBe(429);
    for (let i = 0; i < 4; i++) expect((await requestToken(idp, own.clientId, own.clientSecret)).status).toBe(200);
    expect((await requestToken(idp, own.clientId, own.clientSecret)).status).toBe(429);
    // An operator changes the org's default through the API: every instance has it before the answer.
    const operator = await managementToken(idp, idp.operator.clientId, idp.operator.clientSecret);
    const patched = await api(idp.url, operator).patch(`/api/v1/orgs/${other.orgId}`, { body: { limits: { tokensPerMinutePerAgent: 3 } } });
    expect(patched.status).toBe(200);
    expect((await requestToken(idp, plain.clientId, plain.clientSecret)).status).toBe(200);
    expect((await requestToken(idp, plain.clientId, plain.clientSecret)).status).toBe(429);
    // Agents of other orgs are not bound by it.
    const free = await agentWithSecret(idp, org.token);
    for (let i = 0; i < 5; i++) expect((await requestToken(idp, free.clientId, free.clientSecret)).status).toBe(200);
  });
});

describeOnPostgres('token quotas across instances', 'two instances need a PostgreSQL server', () => {
  let a: TestIdp;
  let b: TestIdp;

  beforeAll(async () => {
    a = await startTestIdp({ clock });
    b = await startTestIdp({ replicaOf: a, clock });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it("count every instance's tokens once their counts are added (each instance adds its own every second)", async () => {
    const org = await createOrg(a);
    const agent = await agentWithSecret(a, org.token);
    await setQuota(a, agent.clientId, { perMinute: 4 });
    for (let i = 0; i < 2; i++) expect((await requestToken(a, agent.clientId, agent.clientSecret)).status).toBe(200);
    await a.idp.container.counter.flush();
    expect((await requestToken(b, agent.clientId, agent.clientSecret)).status).toBe(200);
    // b learns a's two when it adds its own one.
    await b.idp.container.counter.flush();
    expect((await requestToken(b, agent.clientId, agent.clientSecret)).status).toBe(200);
    expect((await requestToken(b, agent.clientId, agent.clientSecret)).status).toBe(429);
  });
});

describe('GET /api/v1/usage', () => {
  let idp: TestIdp;

  beforeAll(async () => {
    idp = await startTestIdp({ clock });
  });
  afterAll(() => idp?.close());

  it("shows the caller's org only: agents by state, active credentials, tokens issued today and in 30 days, and its limits", async () => {
    const org = await createOrg(idp);
    const other = await createOrg(idp);
    await idp.changeBySql(`UPDATE orgs SET limits = '{"maxAgents": 50}' WHERE id = $1`, [org.orgId]);
    const one = await agentWithSecret(idp, org.token);
    const two = await agentWithSecret(idp, org.token);
    await createCredential(idp, org.token, two.clientId);
    expect((await api(idp.url, org.token).patch(`/api/v1/agents/${two.clientId}`, { body: { status: 'suspended' } })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await requestToken(idp, one.clientId, one.clientSecret)).status).toBe(200);
    await agentWithSecret(idp, other.token).then((x) => requestToken(idp, x.clientId, x.clientSecret));
    // Yesterday's count, as the counters hold it: usage reads counters, not the audit log.
    const yesterday = new Date(now - DAY_MS).toISOString().slice(0, 10);
    await idp.idp.database.dataSource.query('INSERT INTO org_token_counts (org_id, day, tokens) VALUES ($1, $2, 40)', [org.orgId, yesterday]);
    const longAgo = new Date(now - 30 * DAY_MS).toISOString().slice(0, 10);
    await idp.idp.database.dataSource.query('INSERT INTO org_token_counts (org_id, day, tokens) VALUES ($1, $2, 1000)', [org.orgId, longAgo]);

    const res = await api(idp.url, org.token).get('/api/v1/usage');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      orgId: org.orgId,
      // The admin created with the org, one active agent, one suspended.
      agents: { active: 2, suspended: 1 },
      // The admin's secret, one's, and two's two (suspended agents keep their credentials).
      credentials: { active: 4 },
      // The admin's management token (createOrg) and one's three; yesterday's 40; not the day 30 days ago.
      tokensIssued: { today: 1 + 3, last30Days: 1 + 3 + 40, perDay: expect.any(Array) },
      limits: { maxAgents: 50 },
    });
    // The same days one by one, oldest first, ending today: the console's chart.
    const perDay = res.body.tokensIssued.perDay as { day: string; tokens: number }[];
    expect(perDay).toHaveLength(30);
    expect(perDay.at(-1)).toEqual({ day: new Date(now).toISOString().slice(0, 10), tokens: 1 + 3 });
    expect(perDay.at(-2)).toEqual({ day: yesterday, tokens: 40 });
    expect(perDay.slice(0, -2).every((d) => d.tokens === 0)).toBe(true);
    expect(perDay[0].day).toBe(new Date(now - 29 * DAY_MS).toISOString().slice(0, 10));
    const otherUsage = await api(idp.url, other.token).get('/api/v1/usage');
    expect(otherUsage.body).toMatchObject({ orgId: other.orgId, agents: { active: 2, suspended: 0 }, limits: {} });
    expect(otherUsage.body.tokensIssued.today).toBeGreaterThanOrEqual(1);
  });
});
