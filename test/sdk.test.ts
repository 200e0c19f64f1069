import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { SignJWT, decodeProtectedHeader, generateKeyPair } from 'jose';
import {
  AgentTokenClient,
  OAuthError,
  TokenError,
  createVerifier,
  expressAuth,
  koaAuth,
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type FetchLike,
  type Verifier,
} from '../sdk/src/index.ts';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { agentWithSecret, createOrg, operatorToken } from './factories.ts';

// The SDK against the real server: no mocks. What goes over the wire is counted by a fetch that
// passes every request on to the real fetch.

const AUDIENCE = 'https://orders.example';
const OTHER_AUDIENCE = 'https://ledger.example';

function countingFetch() {
  const urls: string[] = [];
  const fetchImpl: FetchLike = (input, init) => {
    urls.push(String(input instanceof Request ? input.url : input));
    return fetch(input, init);
  };
  return { fetch: fetchImpl, count: (suffix: string) => urls.filter((u) => u.endsWith(suffix)).length };
}

/** A clock the test moves. */
function clock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => (offset += ms) };
}

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function agentAndResourceServer(idp: TestIdp) {
  const org = await createOrg(idp);
  const agent = await agentWithSecret(idp, org.token, { audiences: [AUDIENCE, OTHER_AUDIENCE], scopes: ['orders:read', 'orders:write'] });
  const rs = await agentWithSecret(idp, org.token, { name: 'orders-api', scopes: ['tokens:introspect'] });
  return { org, agent, rs };
}

/** POST /token/revoke as the token's agent (RFC 7009). */
async function revoke(idp: TestIdp, agent: { clientId: string; clientSecret: string }, token: string) {
  const res = await fetch(`${idp.url}/token/revoke`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(`${agent.clientId}:${agent.clientSecret}`)}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  expect(res.status).toBe(200);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the SDK against a server', () => {
  let t: TestIdp;
  let agent: Awaited<ReturnType<typeof agentWithSecret>>;
  let rs: Awaited<ReturnType<typeof agentWithSecret>>;

  beforeAll(async () => {
    t = await startTestIdp();
    ({ agent, rs } = await agentAndResourceServer(t));
  });
  afterAll(() => t.close());

  const tokenClient = (options: Partial<ConstructorParameters<typeof AgentTokenClient>[0]> = {}) =>
    new AgentTokenClient({ issuer: t.url, clientId: agent.clientId, clientSecret: agent.clientSecret, ...options });

  describe('AgentTokenClient', () => {
    it('asks /token once for many getToken calls, and once more for another (scope, resource)', async () => {
      const wire = countingFetch();
      const client = tokenClient({ fetch: wire.fetch, scope: 'orders:read' });
      const first = await client.getToken();
      for (let i = 0; i < 20; i++) expect(await client.getToken()).toBe(first);
      expect(wire.count('/token')).toBe(1);
      expect(wire.count('/.well-known/oauth-authorization-server')).toBe(1);
      expect(first).toMatchObject({ tokenType: 'Bearer', scope: 'orders:read' });
      expect(first.expiresAt).toBeGreaterThan(Date.now() + 3_500_000);

      const ledger = await client.getToken({ resource: OTHER_AUDIENCE });
      expect(ledger.accessToken).not.toBe(first.accessToken);
      await client.getToken({ resource: OTHER_AUDIENCE });
      expect(wire.count('/token')).toBe(2);
    });

    it('concurrent callers share one request', async () => {
      const wire = countingFetch();
      const client = tokenClient({ fetch: wire.fetch });
      const tokens = await Promise.all(Array.from({ length: 10 }, () => client.getToken()));
      expect(new Set(tokens.map((x) => x.accessToken)).size).toBe(1);
      expect(wire.count('/token')).toBe(1);
    });

    it('renews a token once 80 % of its life has passed', async () => {
      const wire = countingFetch();
      const time = clock();
      const client = tokenClient({ fetch: wire.fetch, now: time.now });
      const first = await client.getToken();
      const life = first.expiresAt - time.now();
      time.advance(life * 0.8 - 5_000);
      expect(await client.getToken()).toBe(first);
      time.advance(10_000);
      const renewed = await client.getToken();
      expect(renewed.accessToken).not.toBe(first.accessToken);
      expect(wire.count('/token')).toBe(2);
    });

    it('throws OAuthError with the OAuth error on a 4xx answer, and does not retry it', async () => {
      const wire = countingFetch();
      const wrong = await rejection(tokenClient({ fetch: wire.fetch, clientSecret: 'aidp_cs_wrong' }).getToken());
      expect(wrong).toBeInstanceOf(OAuthError);
      expect(wrong).toMatchObject({ code: 'invalid_client', error: 'invalid_client', status: 401 });
      expect(wire.count('/token')).toBe(1);

      const scope = await rejection(tokenClient().getToken({ scope: 'payments:write' }));
      expect(scope).toMatchObject({ code: 'invalid_scope', status: 400 });
    });

    it('refuses metadata that names another issuer (RFC 8414 §3.3)', async () => {
      const err = await rejection(tokenClient({ issuer: t.url.replace('127.0.0.1', 'localhost') }).getToken());
      expect(err).toMatchObject({ code: 'discovery_failed' });
    });
  });

  describe('createVerifier', () => {
    it('returns the claims of a good token, and caches the JWKS as its Cache-Control says (max-age=600)', async () => {
      const wire = countingFetch();
      const time = clock();
      const verifier = createVerifier({ issuer: t.url, audience: AUDIENCE, requiredScopes: ['orders:read'], fetch: wire.fetch, now: time.now });
      const { accessToken } = await tokenClient().getToken();
      const claims = await verifier.verify(accessToken);
      expect(claims).toMatchObject({ iss: t.url, aud: AUDIENCE, sub: agent.clientId, client_id: agent.clientId, scope: 'orders:read orders:write' });

      time.advance(599_000);
      await verifier.verify(accessToken);
      expect(wire.count('/.well-known/jwks.json')).toBe(1);
      time.advance(2_000);
      await verifier.verify(accessToken);
      expect(wire.count('/.well-known/jwks.json')).toBe(2);
    });

    it('says invalid_token for another audience, garbage, and an expired token (after the tolerance)', async () => {
      const { accessToken, expiresAt } = await tokenClient().getToken();
      const ledger = createVerifier({ issuer: t.url, audience: OTHER_AUDIENCE });
      const err = await rejection(ledger.verify(accessToken));
      expect(err).toBeInstanceOf(TokenError);
      expect(err.code).toBe('invalid_token');
      expect(err.message).toMatch(/aud/);
      expect((await rejection(ledger.verify('not.a.jwt'))).code).toBe('invalid_token');

      const time = clock();
      const late = createVerifier({ issuer: t.url, audience: AUDIENCE, clockToleranceSeconds: 30, now: time.now });
      time.advance(expiresAt - Date.now() + 20_000);
      await late.verify(accessToken);
      time.advance(20_000);
      expect(await rejection(late.verify(accessToken))).toMatchObject({ code: 'invalid_token', message: expect.stringMatching(/exp/) });
    });

    it('says insufficient_scope when a required scope is missing', async () => {
      const { accessToken } = await tokenClient().getToken({ scope: 'orders:read' });
      const verifier = createVerifier({ issuer: t.url, audience: AUDIENCE, requiredScopes: ['orders:write'] });
      const err = await rejection(verifier.verify(accessToken));
      expect(err).toBeInstanceOf(TokenError);
      expect(err).toMatchObject({ code: 'insufficient_scope', requiredScopes: ['orders:write'] });
    });

    it('strict mode honours a revocation once the cached introspection answer is past cacheSeconds', async () => {
      const wire = countingFetch();
      const time = clock();
      const strict = createVerifier({ issuer: t.url, audience: AUDIENCE, introspection: { ...rs }, fetch: wire.fetch, now: time.now });
      const lenient = createVerifier({ issuer: t.url, audience: AUDIENCE });
      const { accessToken } = await tokenClient().getToken();
      await strict.verify(accessToken);
      await strict.verify(accessToken);
      expect(wire.count('/token/introspect')).toBe(1);

      await revoke(t, agent, accessToken);
      await strict.verify(accessToken); // the cached answer stands for cacheSeconds (30)
      time.advance(31_000);
      expect(await rejection(strict.verify(accessToken))).toMatchObject({ code: 'invalid_token', message: expect.stringMatching(/not active/) });
      expect(wire.count('/token/introspect')).toBe(2);
      await lenient.verify(accessToken); // offline verification cannot know
    });
  });

  describe('middleware over HTTP', () => {
    const metadataUrl = 'https://orders.example/.well-known/oauth-protected-resource';
    let koaUrl: string;
    let nodeUrl: string;
    const servers: Server[] = [];

    beforeAll(async () => {
      const verifier = createVerifier({ issuer: t.url, audience: AUDIENCE, introspection: { ...rs, cacheSeconds: 0 } });
      const app = new Koa();
      app.use(koaAuth(verifier, { scopes: ['orders:write'], resourceMetadataUrl: metadataUrl }));
      app.use((ctx) => {
        ctx.body = { sub: ctx.state.auth.sub };
      });
      servers.push(createServer(app.callback()));
      koaUrl = await listen(servers[0]);

      // expressAuth needs only what node:http's request and response have.
      const guard = expressAuth(verifier, { scopes: ['orders:write'] });
      servers.push(
        createServer((req, res) =>
          guard(req, res, (err) => {
            res.statusCode = err ? 500 : 200;
            res.end(err ? 'error' : JSON.stringify({ sub: (req as { auth?: { sub: string } }).auth?.sub }));
          }),
        ),
      );
      nodeUrl = await listen(servers[1]);
    });
    afterAll(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))));

    it.each(['koa', 'express'])('%s: 401 without a token or with a bad one, 403 with too few scopes, 200 with a good one', async (kind) => {
      const base = kind === 'koa' ? koaUrl : nodeUrl;
      const metadata = kind === 'koa' ? `, resource_metadata="${metadataUrl}"` : '';
      const get = (token?: string) => fetch(`${base}/orders`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

      const none = await get();
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe(kind === 'koa' ? `Bearer resource_metadata="${metadataUrl}"` : 'Bearer');

      const bad = await get('eyJub3Q.YQ.YQ');
      expect(bad.status).toBe(401);
      expect(bad.headers.get('www-authenticate')).toMatch(new RegExp(`^Bearer error="invalid_token", error_description="[^"]+"${metadata}$`));
      expect(await bad.json()).toMatchObject({ error: 'invalid_token' });

      const readOnly = await tokenClient().getToken({ scope: 'orders:read' });
      const forbidden = await get(readOnly.accessToken);
      expect(forbidden.status).toBe(403);
      expect(forbidden.headers.get('www-authenticate')).toMatch(
        new RegExp(`^Bearer error="insufficient_scope", error_description="[^"]+", scope="orders:write"${metadata}$`),
      );

      const good = await get((await tokenClient().getToken()).accessToken);
      expect(good.status).toBe(200);
      expect(await good.json()).toEqual({ sub: agent.clientId });
    });

    it('AgentTokenClient.fetch sends the token, and after a 401 (a revoked token) retries once with a fresh one', async () => {
      const wire = countingFetch();
      const client = tokenClient({ fetch: wire.fetch });
      expect((await client.fetch(`${koaUrl}/orders`)).status).toBe(200);
      const { accessToken } = await client.getToken();
      await revoke(t, agent, accessToken);

      const res = await client.fetch(`${koaUrl}/orders`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ sub: agent.clientId });
      expect(wire.count('/token')).toBe(2);
      expect(wire.count('/orders')).toBe(3);
      expect((await client.getToken()).accessToken).not.toBe(accessToken);
    });
  });
});

// Rotations and key revocations change what every token of the server verifies against: a server
// of their own.
describe('the verifier and the signing keys', () => {
  let k: TestIdp;

  beforeAll(async () => {
    k = await startTestIdp();
  });
  afterAll(() => k.close());

  const operator = async () => api(k.url, await operatorToken(k));

  async function setUp() {
    const { agent, rs } = await agentAndResourceServer(k);
    // Each token is asked for anew, so that each carries the kid of the key active at that moment.
    const token = async () => (await new AgentTokenClient({ issuer: k.url, ...agent }).getToken()).accessToken;
    return { agent, rs, token };
  }

  it('verifies tokens of the new key after a rotation; an unknown kid refetches the JWKS, at most once per 30 s', async () => {
    const { token } = await setUp();
    const wire = countingFetch();
    const time = clock();
    const verifier = createVerifier({ issuer: k.url, audience: AUDIENCE, fetch: wire.fetch, now: time.now });
    await verifier.verify(await token());
    expect(wire.count('/.well-known/jwks.json')).toBe(1);

    // The next key was published before it signs: known already.
    const first = await (await operator()).post('/api/v1/keys/rotate');
    expect(first.status).toBe(200);
    const afterFirst = await token();
    expect(decodeProtectedHeader(afterFirst).kid).toBe(first.body.active.kid);
    await verifier.verify(afterFirst);
    expect(wire.count('/.well-known/jwks.json')).toBe(1);

    // A second rotation promotes a key this verifier has never seen.
    const second = await (await operator()).post('/api/v1/keys/rotate');
    const afterSecond = await token();
    expect(decodeProtectedHeader(afterSecond).kid).toBe(second.body.active.kid);
    // Within 30 s of the last fetch, an unknown kid is refused without asking again.
    expect(await rejection(verifier.verify(afterSecond))).toMatchObject({ code: 'invalid_token' });
    expect(wire.count('/.well-known/jwks.json')).toBe(1);
    time.advance(31_000);
    await verifier.verify(afterSecond);
    expect(wire.count('/.well-known/jwks.json')).toBe(2);

    // A kid nobody published (a forged token) does not make it fetch again within 30 s.
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ scope: 'orders:read' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'not-a-published-kid' })
      .setIssuer(k.url)
      .setAudience(AUDIENCE)
      .setSubject('someone')
      .setExpirationTime('5m')
      .sign(privateKey);
    expect(await rejection(verifier.verify(forged))).toMatchObject({ code: 'invalid_token' });
    expect(wire.count('/.well-known/jwks.json')).toBe(2);
  });

  it('after a signing key is revoked, strict mode says invalid_token for its tokens; a verifier with the JWKS cached cannot know', async () => {
    const { rs, token } = await setUp();
    const signed = await token();
    const strict = createVerifier({ issuer: k.url, audience: AUDIENCE, introspection: { ...rs, cacheSeconds: 0 } });
    const lenient: Verifier = createVerifier({ issuer: k.url, audience: AUDIENCE });
    await strict.verify(signed);
    await lenient.verify(signed);

    const { kid } = decodeProtectedHeader(signed);
    const revoked = await (await operator()).post(`/api/v1/keys/${kid}/revoke`);
    expect(revoked.status).toBe(200);
    expect((await call(k.url, 'GET', '/.well-known/jwks.json')).body.keys.map((key: { kid: string }) => key.kid)).not.toContain(kid);

    expect(await rejection(strict.verify(signed))).toMatchObject({ code: 'invalid_token' });
    await lenient.verify(signed);
    expect(await rejection(createVerifier({ issuer: k.url, audience: AUDIENCE }).verify(signed))).toMatchObject({ code: 'invalid_token' });
  });
});

// A real proxy in front of a server whose PUBLIC_URL it is: it fails the first requests to
// /token as told, then passes everything on.
describe('AgentTokenClient retries', () => {
  let proxy: Server;
  let idp: TestIdp;
  let agent: { clientId: string; clientSecret: string };
  const failures: Array<'503' | '429' | 'reset'> = [];
  let tokenRequests = 0;

  beforeAll(async () => {
    let upstream = '';
    proxy = createServer((req, res) => {
      if (req.url === '/token') {
        tokenRequests++;
        const failure = failures.shift();
        if (failure === 'reset') return void req.socket.destroy();
        if (failure) {
          res.writeHead(Number(failure), { 'retry-after': failure === '503' ? '1' : '0', 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ error: failure === '503' ? 'temporarily_unavailable' : 'slow_down' }));
        }
      }
      const forward = request(`${upstream}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      req.pipe(forward);
    });
    const proxyUrl = await listen(proxy);
    idp = await startTestIdp({ env: { PUBLIC_URL: proxyUrl } });
    upstream = idp.url;
    const org = await createOrg({ url: proxyUrl, operator: idp.operator });
    agent = await agentWithSecret({ url: proxyUrl }, org.token, { audiences: [AUDIENCE] });
  });
  afterAll(async () => {
    await new Promise((resolve) => proxy.close(resolve));
    await idp.close();
  });
  beforeEach(() => {
    failures.length = 0;
    tokenRequests = 0;
  });

  it('gets through a 503, a reset connection and a 429, waiting as Retry-After says', async () => {
    failures.push('503', 'reset', '429');
    const client = new AgentTokenClient({ issuer: idp.config.publicUrl, ...agent });
    const started = Date.now();
    const token = await client.getToken();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(tokenRequests).toBe(4);
    await createVerifier({ issuer: idp.config.publicUrl, audience: AUDIENCE }).verify(token.accessToken);
  });

  it('keeps using the cached token while renewal fails for want of a server, until it expires', async () => {
    const time = clock();
    const client = new AgentTokenClient({ issuer: idp.config.publicUrl, ...agent, now: time.now, retry: { maxAttempts: 1 } });
    const first = await client.getToken();
    time.advance((first.expiresAt - time.now()) * 0.9);
    failures.push('503');
    expect(await client.getToken()).toBe(first);
    expect(tokenRequests).toBe(2);
    const renewed = await client.getToken();
    expect(renewed.accessToken).not.toBe(first.accessToken);
    expect(tokenRequests).toBe(3);
  });

  it('gives up after maxAttempts with the last answer as an OAuthError', async () => {
    failures.push('429', '429', '429');
    const client = new AgentTokenClient({ issuer: idp.config.publicUrl, ...agent, retry: { maxAttempts: 2 } });
    expect(await rejection(client.getToken())).toMatchObject({ code: 'slow_down', status: 429 });
    expect(tokenRequests).toBe(2);
  });
});

// The RFC 9728 document and its address are pure functions of the options: no server needed.

describe('protected resource metadata (RFC 9728)', () => {
  it('builds the document, with the issuer as the authorization server by default', () => {
    expect(protectedResourceMetadata({ resource: 'https://tools.example/mcp', issuer: 'https://idp.example', scopes: ['tools:read'] })).toEqual({
      resource: 'https://tools.example/mcp',
      authorization_servers: ['https://idp.example'],
      scopes_supported: ['tools:read'],
      bearer_methods_supported: ['header'],
    });
    const doc = protectedResourceMetadata({
      resource: 'https://tools.example',
      issuer: 'https://idp.example',
      authorizationServers: ['https://a.example', 'https://b.example'],
      resourceName: 'Tools',
      resourceDocumentation: 'https://tools.example/docs',
    });
    expect(doc).toEqual({
      resource: 'https://tools.example',
      authorization_servers: ['https://a.example', 'https://b.example'],
      bearer_methods_supported: ['header'],
      resource_name: 'Tools',
      resource_documentation: 'https://tools.example/docs',
    });
    expect(doc).not.toHaveProperty('scopes_supported');
  });

  it('refuses a document without an authorization server, or with a resource that is not a URL', () => {
    expect(() => protectedResourceMetadata({ resource: 'https://tools.example/mcp' })).toThrow(/issuer or authorizationServers/);
    expect(() => protectedResourceMetadata({ resource: 'tools', issuer: 'https://idp.example' })).toThrow(/Invalid URL/);
  });

  it('puts the well-known segment between the host and the path (§3.1)', () => {
    expect(protectedResourceMetadataUrl('https://tools.example/mcp')).toBe('https://tools.example/.well-known/oauth-protected-resource/mcp');
    expect(protectedResourceMetadataUrl('http://127.0.0.1:8080/a/b?x=1')).toBe('http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b?x=1');
    expect(protectedResourceMetadataUrl('https://tools.example/')).toBe('https://tools.example/.well-known/oauth-protected-resource');
    expect(protectedResourceMetadataUrl('https://tools.example')).toBe('https://tools.example/.well-known/oauth-protected-resource');
  });
});
