import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { expectJwksAsProviderServes } from './helpers/provider-jwks.ts';
import { agentWithSecret, createOrg, operatorToken, requestToken } from './factories.ts';

let t: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  t = await startTestIdp();
  org = await createOrg(t);
});
afterAll(() => t.close());

async function verifyWithServedJwks(token: string, audience: string) {
  return jwtVerify(token, createRemoteJWKSet(new URL(`${t.url}/.well-known/jwks.json`)), {
    issuer: t.url,
    audience,
    typ: 'at+jwt',
  });
}

describe('discovery and JWKS', () => {
  it('serves RFC 8414 metadata at both well-known paths, advertising client_credentials, token exchange and jwt-bearer, with secrets, keys and DPoP', async () => {
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const res = await call(t.url, 'GET', path);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        issuer: t.url,
        token_endpoint: `${t.url}/token`,
        jwks_uri: `${t.url}/.well-known/jwks.json`,
        // jwt-bearer (RFC 7523 §2.1) needs no client authentication, but `none` is not advertised: no client may use it otherwise.
        grant_types_supported: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
        token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
        introspection_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
        revocation_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        dpop_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      });
      expect(res.body.authorization_endpoint).toBeUndefined();
      expect(res.body.token_endpoint_auth_methods_supported).not.toContain('client_secret_jwt');
    }
  });

  it('advertises every endpoint under the issuer, whatever Host the request names', async () => {
    // node's fetch will not send another Host: a raw request, as an attacker (or a careless proxy) would.
    const { request } = await import('node:http');
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(`${t.url}/.well-known/openid-configuration`, { headers: { host: 'attacker.example' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    const metadata = JSON.parse(body);
    expect(metadata).toMatchObject({ issuer: t.url, token_endpoint: `${t.url}/token`, jwks_uri: `${t.url}/.well-known/jwks.json` });
    expect(body).not.toContain('attacker.example');
  });

  it('publishes public keys only (the active one and the next one), cacheable, with an ETag', async () => {
    const res = await call(t.url, 'GET', '/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=600');
    expect(res.body.keys).toHaveLength(2);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const again = await call(t.url, 'GET', '/.well-known/jwks.json', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    for (const key of res.body.keys) {
      expect(key).toMatchObject({ use: 'sig', alg: 'RS256', kty: 'RSA' });
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(key[member]).toBeUndefined();
    }
  });

  it("answers the JWKS from its own bytes, exactly as oidc-provider's route does for the same keys", async () => {
    await expectJwksAsProviderServes(t);
  });

  it('answers the JWKS with 304 to a matching If-None-Match, to HEAD without a body, echoes X-Request-Id and counts it in the metrics', async () => {
    const first = await fetch(`${t.url}/.well-known/jwks.json?x=1`, { headers: { 'x-request-id': 'rs-fetch-1' } });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-request-id')).toBe('rs-fetch-1');
    const etag = first.headers.get('etag')!;
    for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await fetch(`${t.url}/.well-known/jwks.json`, { headers: { 'if-none-match': ifNoneMatch } });
      expect([ifNoneMatch, res.status, await res.text()]).toEqual([ifNoneMatch, 304, '']);
      expect(res.headers.get('etag')).toBe(etag);
    }
    expect((await fetch(`${t.url}/.well-known/jwks.json`, { headers: { 'if-none-match': '"other"' } })).status).toBe(200);
    const head = await fetch(`${t.url}/.well-known/jwks.json`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(first.headers.get('content-length'));
    expect(await head.text()).toBe('');
    // A generated id for a caller that sent none (or an unusable one).
    expect((await fetch(`${t.url}/.well-known/jwks.json`, { headers: { 'x-request-id': 'bad id!' } })).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // CORS preflight and other methods are oidc-provider's, as before.
    const preflight = await fetch(`${t.url}/.well-known/jwks.json`, {
      method: 'OPTIONS',
      headers: { origin: 'https://rs.example', 'access-control-request-method': 'GET' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET');
    expect((await fetch(`${t.url}/.well-known/jwks.json`, { method: 'POST' })).status).toBe(404);
    const { body } = await t.idp.metrics.scrape();
    expect(body).toMatch(/agent_idp_http_request_duration_seconds_count\{route="\/\.well-known\/jwks\.json",method="GET",status="304"\} [1-9]/);
    expect(body).toMatch(/agent_idp_http_request_duration_seconds_count\{route="\/\.well-known\/jwks\.json",method="HEAD",status="200"\} 1/);
  });

  it('serves nothing else of oidc-provider', async () => {
    for (const path of ['/auth', '/me', '/session/end', '/reg', '/request', '/token/introspection']) {
      const res = await fetch(t.url + path);
      expect(res.status).toBe(404);
    }
  });
});

describe('POST /token', () => {
  it('issues an RFC 9068 JWT that verifies against the served JWKS, with client_secret_basic and client_secret_post', async () => {
    const a = await agentWithSecret(t, org.token, { scopes: ['orders:read', 'orders:write'], audiences: ['https://orders.example'] });
    for (const method of ['basic', 'post'] as const) {
      const res = await requestToken(t, a.clientId, a.clientSecret, {}, method);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'orders:read orders:write' });
      const { payload, protectedHeader } = await verifyWithServedJwks(res.body.access_token, 'https://orders.example');
      const active = (await t.idp.database.dataSource.query(`SELECT kid FROM signing_keys WHERE status = 'active'`))[0].kid;
      expect(protectedHeader).toMatchObject({ typ: 'at+jwt', alg: 'RS256', kid: active });
      expect(payload).toMatchObject({
        iss: t.url,
        sub: a.clientId,
        client_id: a.clientId,
        aud: 'https://orders.example',
        scope: 'orders:read orders:write',
        org_id: org.orgId,
      });
      expect(typeof payload.jti).toBe('string');
      expect(payload.exp! - payload.iat!).toBe(3600);
    }
  });

  it('limits scope to what the agent was registered with', async () => {
    const a = await agentWithSecret(t, org.token, { scopes: ['orders:read', 'orders:write'], audiences: ['https://orders.example'] });
    const narrowed = await requestToken(t, a.clientId, a.clientSecret, { scope: 'orders:read' });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.scope).toBe('orders:read');
    const { payload } = await verifyWithServedJwks(narrowed.body.access_token, 'https://orders.example');
    expect(payload.scope).toBe('orders:read');

    const refused = await requestToken(t, a.clientId, a.clientSecret, { scope: 'orders:read orders:delete' });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: 'invalid_scope' });
    const openid = await requestToken(t, a.clientId, a.clientSecret, { scope: 'openid' });
    expect(openid.body.error).toBe('invalid_scope');
  });

  it('limits the audience to the registered ones (RFC 8707 resource), defaulting to the first', async () => {
    const a = await agentWithSecret(t, org.token, { audiences: ['https://a.example', 'https://b.example'] });
    const first = await requestToken(t, a.clientId, a.clientSecret);
    expect((await verifyWithServedJwks(first.body.access_token, 'https://a.example')).payload.aud).toBe('https://a.example');
    const second = await requestToken(t, a.clientId, a.clientSecret, { resource: 'https://b.example' });
    expect((await verifyWithServedJwks(second.body.access_token, 'https://b.example')).payload.aud).toBe('https://b.example');

    const other = await requestToken(t, a.clientId, a.clientSecret, { resource: 'https://c.example' });
    expect(other.status).toBe(400);
    expect(other.body.error).toBe('invalid_target');
    const management = await requestToken(t, a.clientId, a.clientSecret, { resource: `${t.url}/api/v1` });
    expect(management.body.error).toBe('invalid_target');
  });

  it('gives an agent without audiences DEFAULT_AUDIENCE, and no scope when it holds none', async () => {
    const a = await agentWithSecret(t, org.token);
    const res = await requestToken(t, a.clientId, a.clientSecret);
    expect(res.status).toBe(200);
    expect(res.body.scope).toBeUndefined();
    const { payload } = await verifyWithServedJwks(res.body.access_token, t.config.defaultAudience);
    expect(payload.aud).toBe(t.config.defaultAudience);
    expect(payload.scope).toBeUndefined();
  });

  it('honours the agent accessTokenTtlSeconds', async () => {
    const a = await agentWithSecret(t, org.token, { accessTokenTtlSeconds: 120 });
    const res = await requestToken(t, a.clientId, a.clientSecret);
    expect(res.body.expires_in).toBe(120);
    const { payload } = await verifyWithServedJwks(res.body.access_token, t.config.defaultAudience);
    expect(payload.exp! - payload.iat!).toBe(120);
  });

  it('refuses bad client authentication with invalid_client and no hint of which part was wrong', async () => {
    const a = await agentWithSecret(t, org.token);
    // The last characters matter too: bcrypt alone would ignore everything past 72 bytes.
    const wrongSecret = a.clientSecret.slice(0, -4) + (a.clientSecret.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const cases = [
      await requestToken(t, a.clientId, wrongSecret),
      await requestToken(t, a.clientId, 'not-a-secret-of-ours'),
      await requestToken(t, '00000000-0000-4000-8000-000000000000', a.clientSecret),
      await requestToken(t, 'not-a-uuid', a.clientSecret),
    ];
    for (const res of cases) {
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect(JSON.stringify(res.body)).not.toContain(a.clientSecret);
    }
  });

  it('refuses the secret of another agent', async () => {
    const a = await agentWithSecret(t, org.token);
    const b = await agentWithSecret(t, org.token);
    const res = await requestToken(t, a.clientId, b.clientSecret);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('allows client_credentials only', async () => {
    const a = await agentWithSecret(t, org.token);
    for (const grant of ['authorization_code', 'refresh_token', 'password', 'urn:ietf:params:oauth:grant-type:device_code']) {
      const res = await requestToken(t, a.clientId, a.clientSecret, { grant_type: grant, code: 'x', refresh_token: 'x' });
      expect(res.status).toBe(400);
      expect(['unsupported_grant_type', 'unauthorized_client', 'invalid_request']).toContain(res.body.error);
    }
  });

  it('stops a suspended agent at once and lets it back when reactivated', async () => {
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    const admin = api(t.url, org.token);
    expect((await admin.patch(`/api/v1/agents/${a.clientId}`, { body: { status: 'suspended' } })).status).toBe(200);
    expect((await requestToken(t, a.clientId, a.clientSecret)).body.error).toBe('invalid_client');
    expect((await admin.patch(`/api/v1/agents/${a.clientId}`, { body: { status: 'active' } })).status).toBe(200);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
  });

  it('stops a decommissioned agent for good', async () => {
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    expect((await api(t.url, org.token).delete(`/api/v1/agents/${a.clientId}`)).status).toBe(204);
    expect((await requestToken(t, a.clientId, a.clientSecret)).body.error).toBe('invalid_client');
  });

  it('ends a remembered secret at once when it is revoked', async () => {
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    await api(t.url, org.token).delete(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}`);
    expect((await requestToken(t, a.clientId, a.clientSecret)).body.error).toBe('invalid_client');
  });

  it('ends a remembered secret when its credential expires', async () => {
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    // Drive the clock: the credential's expiry passes.
    await t.changeBySql(`UPDATE credentials SET expires_at = now() - interval '1 second' WHERE id = $1`, [a.credential.credentialId]);
    expect((await requestToken(t, a.clientId, a.clientSecret)).body.error).toBe('invalid_client');
  });

  it('rotation: the new secret works, the old one only during the grace period', async () => {
    const admin = api(t.url, org.token);
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);

    const rotated = await admin.post(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}/rotate`, { body: { gracePeriodSeconds: 300 } });
    expect(rotated.status).toBe(200);
    expect(rotated.body.credentialId).toBe(a.credential.credentialId);
    expect(rotated.body.clientSecret).not.toBe(a.clientSecret);
    expect((await requestToken(t, a.clientId, rotated.body.clientSecret)).status).toBe(200);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);

    // The grace period ends (clock driven): the old secret stops, though it was remembered.
    await t.changeBySql(`UPDATE credentials SET previous_expires_at = now() - interval '1 second' WHERE id = $1`, [a.credential.credentialId]);
    expect((await requestToken(t, a.clientId, a.clientSecret)).body.error).toBe('invalid_client');
    expect((await requestToken(t, a.clientId, rotated.body.clientSecret)).status).toBe(200);

    // Without a grace period the old secret stops at once.
    const again = await admin.post(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}/rotate`);
    expect(again.status).toBe(200);
    expect((await requestToken(t, a.clientId, rotated.body.clientSecret)).body.error).toBe('invalid_client');
    expect((await requestToken(t, a.clientId, again.body.clientSecret)).status).toBe(200);
  });

  it('lets an agent hold several secrets at once', async () => {
    const a = await agentWithSecret(t, org.token);
    const second = await api(t.url, org.token).post(`/api/v1/agents/${a.clientId}/credentials`);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    expect((await requestToken(t, a.clientId, second.body.clientSecret)).status).toBe(200);
  });

  it('keeps secrets out of the log', async () => {
    const a = await agentWithSecret(t, org.token);
    await requestToken(t, a.clientId, a.clientSecret);
    await requestToken(t, a.clientId, a.clientSecret.slice(0, -1) + 'x');
    const logs = t.logs.join('\n');
    expect(logs).not.toContain(a.clientSecret);
    expect(logs).not.toContain(a.clientSecret.slice(-43));
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);
    expect(logs).not.toContain(t.operator.clientSecret);
  });

  it('issues operator tokens for the management API audience', async () => {
    const token = await operatorToken(t);
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');
    const { payload } = await verifyWithServedJwks(token, `${t.url}/api/v1`);
    expect((payload.scope as string).split(' ').sort()).toEqual(
      ['agents:read', 'agents:write', 'audit:read', 'keys:read', 'keys:write', 'orgs:read', 'orgs:write', 'webhooks:read', 'webhooks:write'].sort(),
    );
  });
});
