import { randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { describeOnPostgres } from './helpers/postgres-only.ts';
import { api } from './helpers/api.ts';
import { accessToken, agentWithSecret, createOrg, managementToken } from './factories.ts';
import { basicAuthHeader } from '../src/http/basic-auth.ts';
import { generateSecret } from '../src/credentials/secrets.ts';

// Brute-force throttling of client authentication (design/operations.md): per (client id, IP)
// and per IP, over real HTTP. Each test speaks from addresses of its own (TRUST_PROXY=1 and
// X-Forwarded-For), so that tests do not share counters whatever their order.

const LIMIT = 3;
const IP_LIMIT = 6;
const WINDOW_SECONDS = 300;
const ENV = {
  TRUST_PROXY: '1',
  AUTH_FAILURE_LIMIT: String(LIMIT),
  AUTH_FAILURE_IP_LIMIT: String(IP_LIMIT),
  AUTH_FAILURE_WINDOW_SECONDS: String(WINDOW_SECONDS),
};

let now = Date.now();
const clock = () => now;

let ipCounter = 0;
/** A documentation address (RFC 5737) no other test uses. */
const newIp = () => `198.51.100.${++ipCounter}`;

type Endpoint = '/token' | '/token/introspect' | '/token/revoke';

async function post(idp: Pick<TestIdp, 'url'>, path: Endpoint, ip: string, clientId: string, secret: string, form: Record<string, string> = {}) {
  const body = new URLSearchParams(path === '/token' ? { grant_type: 'client_credentials', ...form } : { token: 'x.y.z', ...form });
  const res = await fetch(idp.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuthHeader(clientId, secret), 'x-forwarded-for': ip },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, retryAfter: res.headers.get('retry-after') };
}

/** A well-formed secret that is nobody's. */
const wrongSecret = (_clientId: string) => generateSecret(randomUUID());

/** agent_idp_rate_limited_total{endpoint} as /metrics shows it. */
async function rateLimited(idp: TestIdp, endpoint: string): Promise<number> {
  const { body } = await idp.idp.metrics.scrape();
  const line = body.split('\n').find((l) => l.startsWith(`agent_idp_rate_limited_total{endpoint="${endpoint}"}`));
  return Number(line?.split(' ').at(-1));
}

async function auditOf(idp: TestIdp, action: string, clientId: string) {
  return idp.idp.database.dataSource.query(`SELECT * FROM audit_events WHERE action = $1 AND actor_id = $2 ORDER BY occurred_at`, [action, clientId]);
}

describe('brute-force throttling of client authentication', () => {
  let idp: TestIdp;
  let org: Awaited<ReturnType<typeof createOrg>>;

  beforeAll(async () => {
    idp = await startTestIdp({ env: ENV, clock });
    org = await createOrg(idp);
  });
  afterAll(() => idp?.close());

  it('refuses a (client id, IP) pair past AUTH_FAILURE_LIMIT failures with 429, Retry-After and an RFC 6749 body, doing no lookup and no bcrypt', async () => {
    const agent = await agentWithSecret(idp, org.token);
    const ip = newIp();
    for (let i = 0; i < LIMIT; i++) {
      expect((await post(idp, '/token', ip, agent.clientId, wrongSecret(agent.clientId))).status).toBe(401);
    }
    const lookups = jest.spyOn(idp.idp.container.clients, 'findActiveWithCredential');
    const bcrypt = jest.spyOn(idp.idp.container.credentials, 'verifySecret');
    try {
      // The right secret too: from this address, this client id waits.
      const refused = await post(idp, '/token', ip, agent.clientId, agent.clientSecret);
      expect(refused.status).toBe(429);
      expect(refused.body).toEqual({ error: 'too_many_requests', error_description: expect.stringMatching(/too many failed client authentications/) });
      expect(Number(refused.retryAfter)).toBeGreaterThan(0);
      expect(Number(refused.retryAfter)).toBeLessThanOrEqual(WINDOW_SECONDS);
      expect(lookups).not.toHaveBeenCalled();
      expect(bcrypt).not.toHaveBeenCalled();
      expect(await rateLimited(idp, 'token')).toBeGreaterThanOrEqual(1);
    } finally {
      lookups.mockRestore();
      bcrypt.mockRestore();
    }
  });

  it('never locks the real agent out from another address', async () => {
    const agent = await agentWithSecret(idp, org.token);
    const attacker = newIp();
    for (let i = 0; i < LIMIT; i++) await post(idp, '/token', attacker, agent.clientId, wrongSecret(agent.clientId));
    expect((await post(idp, '/token', attacker, agent.clientId, agent.clientSecret)).status).toBe(429);

    const real = await post(idp, '/token', newIp(), agent.clientId, agent.clientSecret);
    expect(real.status).toBe(200);
    expect(real.body.access_token).toEqual(expect.any(String));
  });

  it('refuses an IP past AUTH_FAILURE_IP_LIMIT failures over many client ids, and nobody else', async () => {
    const agent = await agentWithSecret(idp, org.token);
    const ip = newIp();
    // Made-up client ids: each costs a lookup, so each counts.
    for (let i = 0; i < IP_LIMIT; i++) expect((await post(idp, '/token', ip, randomUUID(), wrongSecret(''))).status).toBe(401);
    const refused = await post(idp, '/token', ip, agent.clientId, agent.clientSecret);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toBe('too_many_requests');
    expect((await post(idp, '/token', newIp(), agent.clientId, agent.clientSecret)).status).toBe(200);
  });

  it('records auth.throttled once per refused period, with the client id and the IP and no secret', async () => {
    const agent = await agentWithSecret(idp, org.token);
    const ip = newIp();
    const secret = wrongSecret(agent.clientId);
    for (let i = 0; i < LIMIT + 4; i++) await post(idp, '/token', ip, agent.clientId, secret);
    await idp.idp.auditWriter.flush();
    const events = await auditOf(idp, 'auth.throttled', agent.clientId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ org_id: org.orgId, ip, outcome: 'failure', target_type: 'client', target_id: agent.clientId });
    expect(events[0].details).toMatchObject({ scope: 'client', clientId: agent.clientId, ip, failures: LIMIT, windowSeconds: WINDOW_SECONDS });
    expect(JSON.stringify(events[0])).not.toContain(secret);
    // The refused requests themselves leave no token.denied: only the LIMIT failures do.
    expect(await auditOf(idp, 'token.denied', agent.clientId)).toHaveLength(LIMIT);
  });

  it('lets the pair try again once the window has passed', async () => {
    const agent = await agentWithSecret(idp, org.token);
    const ip = newIp();
    for (let i = 0; i < LIMIT; i++) await post(idp, '/token', ip, agent.clientId, wrongSecret(agent.clientId));
    expect((await post(idp, '/token', ip, agent.clientId, agent.clientSecret)).status).toBe(429);
    now += WINDOW_SECONDS * 1000;
    expect((await post(idp, '/token', ip, agent.clientId, agent.clientSecret)).status).toBe(200);
    // A new window: one failure is far from the limit.
    expect((await post(idp, '/token', ip, agent.clientId, wrongSecret(agent.clientId))).status).toBe(401);
    expect((await post(idp, '/token', ip, agent.clientId, agent.clientSecret)).status).toBe(200);
  });

  it.each(['/token/introspect', '/token/revoke'] as const)('counts failures at %s too, and refuses there with the same answer', async (path) => {
    const agent = await agentWithSecret(idp, org.token);
    const token = await accessToken(idp, agent.clientId, agent.clientSecret);
    const ip = newIp();
    for (let i = 0; i < LIMIT; i++) expect((await post(idp, path, ip, agent.clientId, wrongSecret(agent.clientId), { token })).status).toBe(401);
    const refused = await post(idp, path, ip, agent.clientId, agent.clientSecret, { token });
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ error: 'too_many_requests', error_description: expect.any(String) });
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    // /token counts the same failures: the pair is refused there as well.
    expect((await post(idp, '/token', ip, agent.clientId, agent.clientSecret)).status).toBe(429);
  });

  it('does not count requests that cost nothing (no credentials, a client id that is no UUID)', async () => {
    const agent = await agentWithSecret(idp, org.token);
    const ip = newIp();
    for (let i = 0; i < IP_LIMIT + 2; i++) {
      const res = await fetch(`${idp.url}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-forwarded-for': ip,
          ...(i % 2 ? { authorization: basicAuthHeader('admin', 'x') } : {}),
        },
        body: 'grant_type=client_credentials',
      });
      // No credentials: 400 invalid_request; a malformed client id: 401 invalid_client. Neither counts.
      expect([400, 401]).toContain(res.status);
    }
    expect((await post(idp, '/token', ip, agent.clientId, agent.clientSecret)).status).toBe(200);
  });
});

describeOnPostgres('brute-force throttling across instances', 'two instances need a PostgreSQL server each can LISTEN on', () => {
  let a: TestIdp;
  let b: TestIdp;
  let org: Awaited<ReturnType<typeof createOrg>>;

  beforeAll(async () => {
    a = await startTestIdp({ env: ENV, clock });
    b = await startTestIdp({ replicaOf: a, env: ENV, clock });
    org = await createOrg(a);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('counts failures spread over two instances as one, and both refuse the next attempt at once', async () => {
    const agent = await agentWithSecret(a, org.token);
    const ip = newIp();
    const order = [a, b, a];
    for (const idp of order) expect((await post(idp, '/token', ip, agent.clientId, wrongSecret(agent.clientId))).status).toBe(401);
    const lookups = jest.spyOn(b.idp.container.clients, 'findActiveWithCredential');
    try {
      // b did not see the failure that reached the limit; it was told before that answer left a.
      expect((await post(b, '/token', ip, agent.clientId, agent.clientSecret)).status).toBe(429);
      expect((await post(a, '/token', ip, agent.clientId, agent.clientSecret)).status).toBe(429);
      expect(lookups).not.toHaveBeenCalled();
    } finally {
      lookups.mockRestore();
    }
    // And neither locks the agent out from its own address.
    expect((await post(b, '/token', newIp(), agent.clientId, agent.clientSecret)).status).toBe(200);
  });

  it('counts per-IP failures over both instances', async () => {
    const agent = await agentWithSecret(a, org.token);
    const ip = newIp();
    for (let i = 0; i < IP_LIMIT; i++) expect((await post(i % 2 ? a : b, '/token', ip, randomUUID(), wrongSecret(''))).status).toBe(401);
    expect((await post(a, '/token', ip, agent.clientId, agent.clientSecret)).status).toBe(429);
    expect((await post(b, '/token/introspect', ip, agent.clientId, agent.clientSecret)).status).toBe(429);
  });
});

describe('the management API rate limit per bearer token', () => {
  let idp: TestIdp;
  let org: Awaited<ReturnType<typeof createOrg>>;
  let t = Date.now();

  beforeAll(async () => {
    idp = await startTestIdp({ env: { MANAGEMENT_RATE_LIMIT: '1', MANAGEMENT_RATE_BURST: '3' }, clock: () => t });
    org = await createOrg(idp);
  });
  afterAll(() => idp?.close());

  const get = (token: string) => api(idp.url, token).get('/api/v1/agents');

  it('answers 429 problem+json rate_limited with Retry-After past the burst, changes nothing, and refills with time', async () => {
    const token = await managementToken(idp, org.admin.clientId, org.admin.clientSecret);
    for (let i = 0; i < 3; i++) expect((await get(token)).status).toBe(200);

    const refused = await api(idp.url, token).post('/api/v1/agents', { body: { name: 'never-made' } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 429, code: 'rate_limited', title: 'Too Many Requests' });
    expect(refused.headers.get('retry-after')).toBe('1');

    // Another token (even of the same agent) has a bucket of its own.
    const other = await managementToken(idp, org.admin.clientId, org.admin.clientSecret);
    const listed = await get(other);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((a: { name: string }) => a.name)).not.toContain('never-made');

    expect(await rateLimited(idp, 'management')).toBe(1);
    t += 1000;
    expect((await get(token)).status).toBe(200);
    expect((await get(token)).status).toBe(429);
  });
});
