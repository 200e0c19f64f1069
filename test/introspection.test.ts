import { basicAuthHeader } from '../src/http/basic-auth.ts';
import * as oidc from 'openid-client';
import { jest } from '@jest/globals';
import { SignJWT, generateKeyPair, decodeJwt, decodeProtectedHeader } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { agentWithSecret, createOrg, operatorToken, requestToken } from './factories.ts';

let t: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  t = await startTestIdp();
  org = await createOrg(t);
});
afterAll(() => t.close());

function basic(clientId: string, secret: string) {
  return basicAuthHeader(clientId, secret);
}

async function form(base: string, path: string, params: Record<string, string>, auth?: { clientId: string; clientSecret: string }) {
  return call(base, 'POST', path, {
    raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams(params).toString() },
    headers: auth ? { authorization: basic(auth.clientId, auth.clientSecret) } : {},
  });
}

const introspect = (token: string, auth: { clientId: string; clientSecret: string }, base = t.url) => form(base, '/token/introspect', { token }, auth);
const revoke = (token: string, auth: { clientId: string; clientSecret: string }, base = t.url) =>
  form(base, '/token/revoke', { token, token_type_hint: 'access_token' }, auth);

async function agentToken(body: Record<string, unknown> = {}) {
  const a = await agentWithSecret(t, org.token, { audiences: ['https://api.example'], scopes: ['orders:read'], ...body });
  const token = (await requestToken(t, a.clientId, a.clientSecret)).body.access_token as string;
  return { ...a, token };
}

describe('POST /token/introspect', () => {
  it('answers an own active token with its claims', async () => {
    const a = await agentToken();
    const res = await introspect(a.token, a);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const claims = decodeJwt(a.token);
    expect(res.body).toEqual({
      active: true,
      iss: t.url,
      sub: a.clientId,
      client_id: a.clientId,
      aud: 'https://api.example',
      scope: 'orders:read',
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      token_type: 'Bearer',
      org_id: org.orgId,
    });
  });

  it('accepts client_secret_post and token_type_hint', async () => {
    const a = await agentToken();
    const res = await form(t.url, '/token/introspect', {
      token: a.token,
      token_type_hint: 'access_token',
      client_id: a.clientId,
      client_secret: a.clientSecret,
    });
    expect(res.body.active).toBe(true);
  });

  it('is exactly {active: false} for garbage, forged, expired, foreign-issuer, alg none and unknown-kid tokens', async () => {
    const a = await agentToken();
    const [header, payload] = a.token.split('.');
    const claims = decodeJwt(a.token);
    const { privateKey } = await generateKeyPair('RS256');
    const kid = decodeProtectedHeader(a.token).kid!;
    const sign = (body: Record<string, unknown>, head: Record<string, unknown> = { alg: 'RS256', typ: 'at+jwt', kid }) =>
      new SignJWT(body).setProtectedHeader(head as never).sign(privateKey);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const candidates = [
      'garbage',
      'a.b.c',
      `${header}.${payload}.${'A'.repeat(342)}`,
      `${b64({ alg: 'none', typ: 'at+jwt' })}.${payload}.`,
      `${b64({ alg: 'HS256', typ: 'at+jwt', kid })}.${payload}.${Buffer.from('x').toString('base64url')}`,
      await sign({ ...claims }),
      await sign({ ...claims }, { alg: 'RS256', typ: 'at+jwt', kid: 'unknown-kid' }),
      // Our own key's tokens can only be made by us; these reuse a valid token's parts.
      `${header}.${b64({ ...claims, exp: Math.floor(Date.now() / 1000) - 10 })}.${a.token.split('.')[2]}`,
      `${header}.${b64({ ...claims, iss: 'https://evil.example' })}.${a.token.split('.')[2]}`,
    ];
    for (const token of candidates) {
      const res = await introspect(token, a);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ active: false });
    }
    expect((await introspect(a.token, a)).body.active).toBe(true);
  });

  it('treats a token past its exp as inactive (the clock is driven, not waited for)', async () => {
    const a = await agentToken({ accessTokenTtlSeconds: 60 });
    const exp = decodeJwt(a.token).exp!;
    // Verified once, so remembered by the verifier: expiry must still count.
    expect((await introspect(a.token, a)).body.active).toBe(true);
    // Only Date moves; timers and I/O run as usual.
    jest.useFakeTimers({
      now: (exp + 1) * 1000,
      doNotFake: [
        'nextTick',
        'setImmediate',
        'clearImmediate',
        'setTimeout',
        'clearTimeout',
        'setInterval',
        'clearInterval',
        'queueMicrotask',
        'hrtime',
        'performance',
      ],
    });
    try {
      expect((await introspect(a.token, a)).body).toEqual({ active: false });
    } finally {
      jest.useRealTimers();
    }
    expect((await introspect(a.token, a)).body.active).toBe(true);
  });

  it('a token verified once (and so remembered) still opens only its own audience', async () => {
    const a = await agentToken();
    expect((await introspect(a.token, a)).body.active).toBe(true);
    // Its audience is https://api.example, not the management API.
    const res = await api(t.url, a.token).get('/api/v1/agents');
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('unauthorized');
  });

  it('401 invalid_client without or with bad client credentials; 400 without token', async () => {
    const a = await agentToken();
    const none = await form(t.url, '/token/introspect', { token: a.token });
    expect(none.status).toBe(401);
    expect(none.body.error).toBe('invalid_client');
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
    const bad = await introspect(a.token, { clientId: a.clientId, clientSecret: a.clientSecret.slice(0, -2) + 'zz' });
    expect(bad.status).toBe(401);
    expect(bad.body.error).toBe('invalid_client');
    const missing = await form(t.url, '/token/introspect', {}, a);
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe('invalid_request');
    const both = await form(t.url, '/token/introspect', { token: a.token, client_secret: a.clientSecret }, a);
    expect(both.body.error).toBe('invalid_request');
  });

  it('refuses a body that is not a form, a huge one and repeated parameters, with invalid_request', async () => {
    const a = await agentToken();
    const auth = { authorization: basicAuthHeader(a.clientId, a.clientSecret) };
    const json = await call(t.url, 'POST', '/token/introspect', {
      raw: { contentType: 'application/json', data: JSON.stringify({ token: a.token }) },
      headers: auth,
    });
    const huge = await call(t.url, 'POST', '/token/introspect', {
      raw: { contentType: 'application/x-www-form-urlencoded', data: `token=${'x'.repeat(70 * 1024)}` },
      headers: auth,
    });
    const twice = await call(t.url, 'POST', '/token/introspect', {
      raw: { contentType: 'application/x-www-form-urlencoded', data: `token=${a.token}&token=${a.token}` },
      headers: auth,
    });
    for (const res of [json, huge, twice]) {
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
    }
  });

  it('shows a stranger nothing, and a resource server of the same org everything', async () => {
    const a = await agentToken();
    const stranger = await agentWithSecret(t, org.token);
    expect((await introspect(a.token, stranger)).body).toEqual({ active: false });

    const rs = await agentWithSecret(t, org.token, { scopes: ['tokens:introspect'] });
    expect((await introspect(a.token, rs)).body).toMatchObject({ active: true, sub: a.clientId });

    const otherOrg = await createOrg(t);
    const foreignRs = await agentWithSecret(t, otherOrg.token, { scopes: ['tokens:introspect'] });
    expect((await introspect(a.token, foreignRs)).body).toEqual({ active: false });
  });

  it('turns inactive when the agent is suspended, active again when reactivated, inactive for good when decommissioned', async () => {
    const a = await agentToken();
    const admin = api(t.url, org.token);
    const rs = await agentWithSecret(t, org.token, { scopes: ['tokens:introspect'] });
    await admin.patch(`/api/v1/agents/${a.clientId}`, { body: { status: 'suspended' } });
    expect((await introspect(a.token, rs)).body).toEqual({ active: false });
    await admin.patch(`/api/v1/agents/${a.clientId}`, { body: { status: 'active' } });
    expect((await introspect(a.token, rs)).body.active).toBe(true);
    await admin.delete(`/api/v1/agents/${a.clientId}`);
    expect((await introspect(a.token, rs)).body).toEqual({ active: false });
  });
});

describe('POST /token/revoke', () => {
  it('revokes an own token: 200, then inactive, stored until it would expire', async () => {
    const a = await agentToken();
    const res = await revoke(a.token, a);
    expect(res.status).toBe(200);
    expect((await introspect(a.token, a)).body).toEqual({ active: false });
    const { jti, exp } = decodeJwt(a.token);
    const rows = await t.idp.database.dataSource.query('SELECT agent_id, expires_at FROM revoked_tokens WHERE jti = $1', [jti]);
    expect(rows).toEqual([{ agent_id: a.clientId, expires_at: new Date(exp! * 1000) }]);
    expect((await revoke(a.token, a)).status).toBe(200);
  });

  it("200 and nothing changed for garbage and for someone else's token", async () => {
    const a = await agentToken();
    const b = await agentWithSecret(t, org.token);
    const count = async () => Number((await t.idp.database.dataSource.query('SELECT count(*) AS n FROM revoked_tokens'))[0].n);
    const before = await count();
    expect((await revoke('garbage', a)).status).toBe(200);
    expect((await revoke(a.token, b)).status).toBe(200);
    expect(await count()).toBe(before);
    expect((await introspect(a.token, a)).body.active).toBe(true);
  });

  it('401 without client authentication; 400 without token', async () => {
    const a = await agentToken();
    expect((await form(t.url, '/token/revoke', { token: a.token })).status).toBe(401);
    expect((await form(t.url, '/token/revoke', {}, a)).body.error).toBe('invalid_request');
    expect((await introspect(a.token, a)).body.active).toBe(true);
  });

  it('a revoked management token stops opening /api/v1 at once', async () => {
    const token = await operatorToken(t);
    expect((await api(t.url, token).get('/api/v1/agents')).status).toBe(200);
    expect((await revoke(token, t.operator)).status).toBe(200);
    expect((await api(t.url, token).get('/api/v1/agents')).status).toBe(401);
  });

  it('expired revocations are purged', async () => {
    const a = await agentToken();
    await revoke(a.token, a);
    const { jti } = decodeJwt(a.token);
    await t.idp.database.dataSource.query(`UPDATE revoked_tokens SET expires_at = now() - interval '1 second' WHERE jti = $1`, [jti]);
    const { RevocationPurge } = await import('../src/oauth/revocation-purge.ts');
    const { RevocationsRepository } = await import('../src/oauth/revocations.repository.ts');
    const purged = await new RevocationPurge(new RevocationsRepository(t.idp.database.dataSource), { debug() {}, info() {}, warn() {}, error() {} }).run();
    expect(purged).toBeGreaterThanOrEqual(1);
    expect(await t.idp.database.dataSource.query('SELECT 1 FROM revoked_tokens WHERE jti = $1', [jti])).toEqual([]);
  });
});

describe('two instances on one database', () => {
  let replica: TestIdp;
  beforeAll(async () => {
    replica = await startTestIdp({ replicaOf: t });
  });
  afterAll(() => replica.close());

  it('a revocation answered by one is honoured by the other at once', async () => {
    const a = await agentToken();
    expect((await introspect(a.token, a, replica.url)).body.active).toBe(true);
    expect((await revoke(a.token, a, t.url)).status).toBe(200);
    expect((await introspect(a.token, a, replica.url)).body).toEqual({ active: false });
  });

  it('a suspension made through one is honoured by the other at once, secret memory included', async () => {
    const a = await agentToken();
    expect((await requestToken({ url: replica.url }, a.clientId, a.clientSecret)).status).toBe(200);
    await api(t.url, org.token).patch(`/api/v1/agents/${a.clientId}`, { body: { status: 'suspended' } });
    expect((await introspect(a.token, a, replica.url)).status).toBe(401);
    expect((await requestToken({ url: replica.url }, a.clientId, a.clientSecret)).body.error).toBe('invalid_client');
  });

  it('a credential revoked through one stops at the other, though the other remembered it', async () => {
    const a = await agentToken();
    expect((await requestToken({ url: replica.url }, a.clientId, a.clientSecret)).status).toBe(200);
    await api(t.url, org.token).delete(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}`);
    expect((await requestToken({ url: replica.url }, a.clientId, a.clientSecret)).body.error).toBe('invalid_client');
  });
});

describe('a standard client library', () => {
  it('discovers the server, gets a token, introspects and revokes it through the advertised endpoints', async () => {
    const a = await agentWithSecret(t, org.token, { scopes: ['orders:read'], audiences: ['https://api.example'] });
    const config = await oidc.discovery(new URL(t.url), a.clientId, a.clientSecret, oidc.ClientSecretBasic(a.clientSecret), {
      execute: [oidc.allowInsecureRequests],
      algorithm: 'oauth2',
    });
    expect(config.serverMetadata().introspection_endpoint).toBe(`${t.url}/token/introspect`);
    expect(config.serverMetadata().revocation_endpoint).toBe(`${t.url}/token/revoke`);
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'orders:read' });
    const active = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(active).toMatchObject({ active: true, client_id: a.clientId, scope: 'orders:read', aud: 'https://api.example' });
    await oidc.tokenRevocation(config, tokens.access_token);
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toEqual({ active: false });
  });
});
