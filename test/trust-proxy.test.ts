import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { agentWithSecret, createOrg, requestToken } from './factories.ts';
import { basicAuthHeader } from '../src/http/basic-auth.ts';

// TRUST_PROXY: which address audit events (and the throttles) take as the client's. Koa's rule
// (node_modules/koa/lib/request.js, `ips` and `ip`): with `proxy` on and `maxIpsCount` n, the
// n-th address of X-Forwarded-For from the right; with no trusted proxy the header is ignored.

const FORWARDED = '203.0.113.9, 198.51.100.7';

async function ipsOfEvents(t: TestIdp, orgToken: string, agentId: string): Promise<Record<string, string>> {
  const res = await api(t.url, orgToken).get(`/api/v1/audit?agentId=${agentId}&limit=50`);
  expect(res.status).toBe(200);
  return Object.fromEntries((res.body.data as { action: string; ip: string }[]).map((e) => [e.action, e.ip]));
}

/** token.issued (oidc-provider's context), token.introspected and agent.updated (our app's), each with X-Forwarded-For. */
async function forwardedRequests(t: TestIdp) {
  const org = await createOrg(t);
  const x = await agentWithSecret(t, org.token);
  const headers = { 'x-forwarded-for': FORWARDED };
  const token = await call(t.url, 'POST', '/token', {
    raw: { contentType: 'application/x-www-form-urlencoded', data: 'grant_type=client_credentials' },
    headers: { authorization: basicAuthHeader(x.clientId, x.clientSecret), ...headers },
  });
  expect(token.status).toBe(200);
  const introspected = await call(t.url, 'POST', '/token/introspect', {
    raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams({ token: token.body.access_token }).toString() },
    headers: { authorization: basicAuthHeader(x.clientId, x.clientSecret), ...headers },
  });
  expect(introspected.body.active).toBe(true);
  expect((await api(t.url, org.token).patch(`/api/v1/agents/${x.clientId}`, { body: { description: 'behind a proxy' }, headers })).status).toBe(200);
  return ipsOfEvents(t, org.token, x.clientId);
}

describe('TRUST_PROXY=1', () => {
  let t: TestIdp;
  beforeAll(async () => {
    t = await startTestIdp({ env: { TRUST_PROXY: '1' } });
  });
  afterAll(() => t.close());

  it('records the address the trusted proxy saw, the last one of X-Forwarded-For', async () => {
    const ips = await forwardedRequests(t);
    expect(ips).toMatchObject({ 'token.issued': '198.51.100.7', 'token.introspected': '198.51.100.7', 'agent.updated': '198.51.100.7' });
  });

  it('records the peer when no proxy forwarded the request', async () => {
    const org = await createOrg(t);
    const x = await agentWithSecret(t, org.token);
    expect((await requestToken(t, x.clientId, x.clientSecret)).status).toBe(200);
    expect((await ipsOfEvents(t, org.token, x.clientId))['token.issued']).toBe('127.0.0.1');
  });

  it('lets no forwarded header change the issuer or the endpoints the metadata advertises', async () => {
    const res = await call(t.url, 'GET', '/.well-known/openid-configuration', {
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'attacker.example', 'x-forwarded-for': FORWARDED },
    });
    expect(res.body).toMatchObject({ issuer: t.url, token_endpoint: `${t.url}/token`, jwks_uri: `${t.url}/.well-known/jwks.json` });
  });
});

describe('TRUST_PROXY=2', () => {
  let t: TestIdp;
  beforeAll(async () => {
    t = await startTestIdp({ env: { TRUST_PROXY: '2' } });
  });
  afterAll(() => t.close());

  it('records the address the outer of the two proxies saw', async () => {
    const ips = await forwardedRequests(t);
    expect(ips).toMatchObject({ 'token.issued': '203.0.113.9', 'token.introspected': '203.0.113.9', 'agent.updated': '203.0.113.9' });
  });
});

describe('TRUST_PROXY=0 (the default)', () => {
  let t: TestIdp;
  beforeAll(async () => {
    t = await startTestIdp();
  });
  afterAll(() => t.close());

  it('ignores X-Forwarded-For: the client is the peer of the connection', async () => {
    const ips = await forwardedRequests(t);
    expect(ips).toMatchObject({ 'token.issued': '127.0.0.1', 'token.introspected': '127.0.0.1', 'agent.updated': '127.0.0.1' });
  });
});
