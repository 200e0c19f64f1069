import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importPKCS8, type CryptoKey, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { agentWithSecret, createAgent, createOrg, requestToken } from './factories.ts';
import { describeOnPostgres } from './helpers/postgres-only.ts';

// private_key_jwt (RFC 7523; design/keys-and-dpop.md) over real HTTP: key credentials through
// the management API, client assertions at /token, /token/introspect and /token/revoke, every
// refusal with its audit reason, replays and revocations across instances, and an unmodified
// openid-client.

const FAILURE_LIMIT = 5;
let idp: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  idp = await startTestIdp({ env: { AUTH_FAILURE_LIMIT: String(FAILURE_LIMIT) } });
  org = await createOrg(idp);
});
afterAll(() => idp.close());

interface Signer {
  key: CryptoKey;
  kid?: string;
  alg: string;
}

const ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

async function assertion(clientId: string, signer: Signer, claims: Record<string, unknown> = {}, options: { aud?: string | string[]; exp?: number } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: signer.alg, ...(signer.kid ? { kid: signer.kid } : {}) })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(options.aud ?? idp.url)
    .setIssuedAt(now)
    .setExpirationTime(options.exp ?? now + 60)
    .sign(signer.key);
}

function form(fields: Record<string, string>) {
  return { raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams(fields).toString() } };
}

async function tokenWithAssertion(jwt: string, params: Record<string, string> = {}, target: TestIdp = idp) {
  return call(target.url, 'POST', '/token', form({ grant_type: 'client_credentials', client_assertion_type: ASSERTION, client_assertion: jwt, ...params }));
}

async function keyCredential(agentId: string, body: Record<string, unknown> = { type: 'private_key_jwt' }) {
  const res = await api(idp.url, org.token).post(`/api/v1/agents/${agentId}/credentials`, { body });
  if (res.status !== 201) throw new Error(`no key credential: ${res.text}`);
  return res.body;
}

async function keyAgent(body: Record<string, unknown> = { type: 'private_key_jwt' }, agentBody: Record<string, unknown> = {}) {
  const agent = await createAgent(idp, org.token, { scopes: ['invoices:read'], audiences: ['https://api.example.com'], ...agentBody });
  const credential = await keyCredential(agent.agentId, body);
  const alg = credential.alg as string;
  const signer: Signer | undefined = credential.privateKeyPem ? { key: await importPKCS8(credential.privateKeyPem, alg), kid: credential.kid, alg } : undefined;
  return { agentId: agent.agentId as string, credential, signer: signer! };
}

async function tokenEvents(agentId: string) {
  const res = await api(idp.url, org.token).get(`/api/v1/audit?agentId=${agentId}&limit=50`);
  return res.body.data.filter((e: { action: string }) => e.action.startsWith('token.'));
}

async function lastDenial(agentId: string) {
  return (await tokenEvents(agentId)).find((e: { action: string }) => e.action === 'token.denied');
}

describe('a generated key pair', () => {
  it('is answered once with the private key, and gets tokens with private_key_jwt', async () => {
    const { agentId, credential, signer } = await keyAgent({ type: 'private_key_jwt', name: 'prod-signer' });
    expect(credential).toMatchObject({ type: 'private_key_jwt', name: 'prod-signer', alg: 'ES256', status: 'active', clientId: agentId });
    expect(credential.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(credential.privateJwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: credential.kid, alg: 'ES256' });
    expect(credential.publicJwk).toEqual({
      kty: 'EC',
      crv: 'P-256',
      x: credential.privateJwk.x,
      y: credential.privateJwk.y,
      kid: credential.kid,
      alg: 'ES256',
      use: 'sig',
    });
    const res = await tokenWithAssertion(await assertion(agentId, signer));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: expect.any(Number) });
    const [issued] = await tokenEvents(agentId);
    expect(issued).toMatchObject({ action: 'token.issued', details: { credentialId: credential.credentialId } });

    // Shown once: the credential's GET and the list hold the public key only.
    const one = await api(idp.url, org.token).get(`/api/v1/agents/${agentId}/credentials/${credential.credentialId}`);
    expect(one.status).toBe(200);
    expect(one.body).not.toHaveProperty('privateKeyPem');
    expect(one.body).not.toHaveProperty('privateJwk');
    expect(one.body.publicJwk).toEqual(credential.publicJwk);
    const list = await api(idp.url, org.token).get(`/api/v1/agents/${agentId}/credentials`);
    expect(list.text).not.toContain('PRIVATE KEY');
    expect(list.text).not.toContain(credential.privateJwk.d);
  });

  it.each(['RS256', 'PS256', 'EdDSA'])('is generated for %s, and its assertions are accepted without a kid too', async (alg) => {
    const { agentId, credential, signer } = await keyAgent({ type: 'private_key_jwt', alg });
    expect(credential.alg).toBe(alg);
    expect((await tokenWithAssertion(await assertion(agentId, { ...signer, kid: undefined }))).status).toBe(200);
    const [issued] = await tokenEvents(agentId);
    expect(issued.details.credentialId).toBe(credential.credentialId);
  });

  it('never reaches a table, a log line or an audit event', async () => {
    const { credential } = await keyAgent({ type: 'private_key_jwt', alg: 'RS256', name: 'scan-me' });
    const pemBody = credential.privateKeyPem.split('\n')[1];
    const { d } = credential.privateJwk;
    const tables: { table_name: string }[] = await idp.idp.database.dataSource.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    for (const { table_name } of tables) {
      const [{ dump }] = await idp.idp.database.dataSource.query(`SELECT coalesce(string_agg(t::text, ' '), '') AS dump FROM "${table_name}" t`);
      expect(dump.includes(pemBody) || dump.includes(d)).toBe(false);
    }
    const logs = idp.logs.join('\n');
    expect(logs).not.toContain(pemBody);
    expect(logs).not.toContain(d);
  });
});

describe("an agent's own public key", () => {
  it('is registered without any private member and opens /token', async () => {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const agent = await createAgent(idp, org.token, { scopes: ['invoices:read'] });
    const credential = await keyCredential(agent.agentId, { type: 'private_key_jwt', name: 'own-key', publicJwk: await exportJWK(publicKey) });
    expect(credential).toMatchObject({ type: 'private_key_jwt', alg: 'EdDSA', publicJwk: { kty: 'OKP', crv: 'Ed25519', use: 'sig' } });
    expect(credential).not.toHaveProperty('privateKeyPem');
    expect(credential).not.toHaveProperty('privateJwk');
    expect((await tokenWithAssertion(await assertion(agent.agentId, { key: privateKey, kid: credential.kid, alg: 'EdDSA' }))).status).toBe(200);
  });

  it.each<[string, () => Promise<Record<string, unknown>>, string]>([
    ['a private EC key', async () => exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey), '/publicJwk/d'],
    ['a private RSA key', async () => exportJWK((await generateKeyPair('RS256', { extractable: true })).privateKey), '/publicJwk/d'],
    ['a symmetric key', async () => ({ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0' }), '/publicJwk/k'],
    ['an oct key without k', async () => ({ kty: 'oct' }), '/publicJwk/kty'],
    [
      'an RSA key under 2048 bits',
      async () => ({ kty: 'RSA', e: 'AQAB', n: Buffer.concat([Buffer.from([0xc1]), randomBytes(127)]).toString('base64url') }),
      '/publicJwk/n',
    ],
    ['an unknown curve', async () => exportJWK((await generateKeyPair('ES384')).publicKey), '/publicJwk/crv'],
    ['a key for encryption', async () => ({ ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), use: 'enc' }), '/publicJwk/use'],
    ['a point off the curve', async () => ({ ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), y: 'AAAA' }), '/publicJwk'],
  ])('refuses %s with 400 naming the field, and stores nothing', async (_what, jwk, field) => {
    const agent = await createAgent(idp, org.token);
    const res = await api(idp.url, org.token).post(`/api/v1/agents/${agent.agentId}/credentials`, {
      body: { type: 'private_key_jwt', publicJwk: await jwk() },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ field })]);
    expect((await api(idp.url, org.token).get(`/api/v1/agents/${agent.agentId}/credentials`)).body.total).toBe(0);
  });

  it('refuses an alg the key cannot sign with, and alg or publicJwk on a secret', async () => {
    const agent = await createAgent(idp, org.token);
    const publicJwk = await exportJWK((await generateKeyPair('ES256')).publicKey);
    const post = (body: unknown) => api(idp.url, org.token).post(`/api/v1/agents/${agent.agentId}/credentials`, { body });
    expect((await post({ type: 'private_key_jwt', alg: 'RS256', publicJwk })).body.errors).toEqual([expect.objectContaining({ field: '/alg' })]);
    expect((await post({ type: 'private_key_jwt', alg: 'HS256' })).status).toBe(400);
    expect((await post({ alg: 'ES256' })).body.errors).toEqual([expect.objectContaining({ field: '/alg' })]);
    expect((await post({ type: 'secret', publicJwk })).body.errors).toEqual([expect.objectContaining({ field: '/publicJwk' })]);
    expect((await post({ type: 'certificate' })).status).toBe(400);
    expect((await api(idp.url, org.token).get(`/api/v1/agents/${agent.agentId}/credentials`)).body.total).toBe(0);
  });
});

describe('credential names', () => {
  it('are unique among the agent’s credentials, secrets and keys alike', async () => {
    const agent = await createAgent(idp, org.token);
    const post = (body: unknown) => api(idp.url, org.token).post(`/api/v1/agents/${agent.agentId}/credentials`, { body });
    const secret = await post({ name: 'ci' });
    expect(secret.status).toBe(201);
    expect(secret.body).toMatchObject({ type: 'secret', name: 'ci' });
    const clash = await post({ type: 'private_key_jwt', name: 'ci' });
    expect(clash.status).toBe(409);
    expect(clash.body.code).toBe('conflict');
    expect((await post({ name: 'x'.repeat(101) })).status).toBe(400);
    expect((await post({ name: 'tab\there' })).status).toBe(400);
    // Another agent may use the name.
    const other = await createAgent(idp, org.token);
    expect((await api(idp.url, org.token).post(`/api/v1/agents/${other.agentId}/credentials`, { body: { name: 'ci' } })).status).toBe(201);
  });
});

describe('client assertions', () => {
  it.each<[string, (agentId: string, signer: Signer) => Promise<string>, string]>([
    ['an audience of another server', (id, s) => assertion(id, s, {}, { aud: 'https://other.example/token' }), 'bad_assertion'],
    ['a lifetime over five minutes', (id, s) => assertion(id, s, {}, { exp: Math.floor(Date.now() / 1000) + 3600 }), 'bad_assertion'],
    ['an expired assertion', (id, s) => assertion(id, s, {}, { exp: Math.floor(Date.now() / 1000) - 60 }), 'bad_assertion'],
    ['no jti', (id, s) => assertion(id, s, { jti: undefined }), 'bad_assertion'],
    ['an iss that is not the client', (id, s) => resign(id, s, { iss: randomUUID() }), 'bad_assertion'],
    ['an unknown kid', (id, s) => assertion(id, { ...s, kid: 'not-a-key-of-this-agent' }), 'unknown_key'],
    ['another key without a kid', async (id) => assertion(id, { key: (await generateKeyPair('ES256')).privateKey, alg: 'ES256' }), 'bad_assertion'],
    [
      'another key under its kid',
      async (id, s) => assertion(id, { key: (await generateKeyPair('ES256')).privateKey, alg: 'ES256', kid: s.kid }),
      'bad_assertion',
    ],
    ['alg none', async (id) => unsigned(id), 'bad_assertion'],
  ])('refuses %s with 401 invalid_client, recorded with its reason', async (_what, make, reason) => {
    const { agentId, signer } = await keyAgent();
    const res = await tokenWithAssertion(await make(agentId, signer));
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(await lastDenial(agentId)).toMatchObject({ outcome: 'failure', details: { error: 'invalid_client', reason } });
  });

  it('refuses an assertion signed with HS256 using a secret of the agent', async () => {
    const { clientId: agentId, clientSecret } = await agentWithSecret(idp, org.token);
    const jwt = await assertion(agentId, { key: new TextEncoder().encode(clientSecret) as unknown as CryptoKey, alg: 'HS256' });
    const res = await tokenWithAssertion(jwt);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('refuses a replayed assertion', async () => {
    const { agentId, signer } = await keyAgent();
    const jwt = await assertion(agentId, signer);
    expect((await tokenWithAssertion(jwt)).status).toBe(200);
    const replay = await tokenWithAssertion(jwt);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
    expect(await lastDenial(agentId)).toMatchObject({ details: { reason: 'assertion_replayed' } });
  });

  it('count toward brute-force throttling: past the limit, even a good assertion is 429', async () => {
    const { agentId, signer } = await keyAgent();
    const stranger = { key: (await generateKeyPair('ES256')).privateKey, alg: 'ES256' };
    for (let i = 0; i < FAILURE_LIMIT; i++) expect((await tokenWithAssertion(await assertion(agentId, stranger))).status).toBe(401);
    const refused = await tokenWithAssertion(await assertion(agentId, signer));
    expect(refused.status).toBe(429);
    expect(refused.body.error).toBe('too_many_requests');
  });

  it('of a revoked, expired or suspended credential are refused', async () => {
    const { agentId, credential, signer } = await keyAgent();
    expect((await tokenWithAssertion(await assertion(agentId, signer))).status).toBe(200);
    expect((await api(idp.url, org.token).delete(`/api/v1/agents/${agentId}/credentials/${credential.credentialId}`)).status).toBe(204);
    expect((await tokenWithAssertion(await assertion(agentId, signer))).status).toBe(401);
    expect(await lastDenial(agentId)).toMatchObject({ details: { reason: 'credential_revoked' } });

    const second = await keyAgent();
    await idp.changeBySql(`UPDATE credentials SET expires_at = now() - interval '1 second' WHERE id = $1`, [second.credential.credentialId]);
    expect((await tokenWithAssertion(await assertion(second.agentId, second.signer))).status).toBe(401);
    expect(await lastDenial(second.agentId)).toMatchObject({ details: { reason: 'credential_expired' } });

    const third = await keyAgent();
    expect((await api(idp.url, org.token).patch(`/api/v1/agents/${third.agentId}`, { body: { status: 'suspended' } })).status).toBe(200);
    expect((await tokenWithAssertion(await assertion(third.agentId, third.signer))).status).toBe(401);
    expect(await lastDenial(third.agentId)).toMatchObject({ details: { reason: 'agent_suspended' } });
  });
});

/** A JWT with `alg: none`, as jose will not make one. */
function unsigned(clientId: string): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none' })}.${part({ iss: clientId, sub: clientId, aud: idp.url, jti: randomUUID(), iat: now, exp: now + 60 })}.`;
}

/** An assertion with `claims` overriding the standard ones (jose's setters would put them back). */
async function resign(clientId: string, signer: Signer, claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: clientId, sub: clientId, aud: idp.url, jti: randomUUID(), iat: now, exp: now + 60, ...claims })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid })
    .sign(signer.key);
}

describe('the audiences an assertion may name', () => {
  it('follow PUBLIC_URL, not the Host a request names: an assertion for another server is refused even with its Host', async () => {
    const { agentId, signer } = await keyAgent();
    const { request } = await import('node:http');
    const send = (jwt: string, host: string) =>
      new Promise<number>((resolve, reject) => {
        const body = new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: ASSERTION, client_assertion: jwt }).toString();
        const req = request(`${idp.url}/token`, { method: 'POST', headers: { host, 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end(body);
      });
    // Made for https://other.example's token endpoint, replayed here with that Host.
    expect(await send(await assertion(agentId, signer, {}, { aud: 'http://other.example/token' }), 'other.example')).toBe(401);
    expect(await lastDenial(agentId)).toMatchObject({ details: { reason: 'bad_assertion' } });
    // Made for this server, sent with any Host: accepted.
    expect(await send(await assertion(agentId, signer, {}, { aud: `${idp.url}/token` }), 'other.example')).toBe(200);
  });
});

describe('an agent moving from a secret to a key', () => {
  it('uses both at once, then keeps working on the key alone', async () => {
    const { clientId: agentId, clientSecret, credential: secret } = await agentWithSecret(idp, org.token, { scopes: ['invoices:read'] });
    const key = await keyCredential(agentId, { type: 'private_key_jwt', name: 'next' });
    const signer = { key: await importPKCS8(key.privateKeyPem, 'ES256'), kid: key.kid, alg: 'ES256' };
    expect((await requestToken(idp, agentId, clientSecret)).status).toBe(200);
    expect((await tokenWithAssertion(await assertion(agentId, signer))).status).toBe(200);
    expect((await api(idp.url, org.token).delete(`/api/v1/agents/${agentId}/credentials/${secret.credentialId}`)).status).toBe(204);
    expect((await requestToken(idp, agentId, clientSecret)).status).toBe(401);
    expect((await tokenWithAssertion(await assertion(agentId, signer))).status).toBe(200);
  });
});

describe('rotating a key credential', () => {
  it('generates a new pair; the old key works during the grace period only', async () => {
    const { agentId, credential, signer } = await keyAgent({ type: 'private_key_jwt', alg: 'ES256' });
    const rotate = (body: unknown) => api(idp.url, org.token).post(`/api/v1/agents/${agentId}/credentials/${credential.credentialId}/rotate`, { body });
    const rotated = await rotate({ gracePeriodSeconds: 300 });
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ credentialId: credential.credentialId, type: 'private_key_jwt', rotatedAt: expect.any(String) });
    expect(rotated.body.kid).not.toBe(credential.kid);
    expect(rotated.body.privateKeyPem).toMatch(/PRIVATE KEY/);
    const next = { key: await importPKCS8(rotated.body.privateKeyPem, 'ES256'), kid: rotated.body.kid, alg: 'ES256' };
    expect((await tokenWithAssertion(await assertion(agentId, next))).status).toBe(200);
    expect((await tokenWithAssertion(await assertion(agentId, signer))).status).toBe(200);
    const jwks = await call(idp.url, 'GET', `/api/v1/agents/${agentId}/jwks`);
    expect(jwks.body.keys.map((k: JWK) => k.kid).sort()).toEqual([credential.kid, rotated.body.kid].sort());

    // The grace period passes (driven through the row, as a clock would).
    await idp.changeBySql(`UPDATE credentials SET previous_expires_at = now() - interval '1 second' WHERE id = $1`, [credential.credentialId]);
    expect((await tokenWithAssertion(await assertion(agentId, signer))).status).toBe(401);
    expect((await tokenWithAssertion(await assertion(agentId, next))).status).toBe(200);
    expect((await call(idp.url, 'GET', `/api/v1/agents/${agentId}/jwks`)).body.keys.map((k: JWK) => k.kid)).toEqual([rotated.body.kid]);
    // A generated pair takes no key from outside.
    const refused = await rotate({ publicJwk: await exportJWK((await generateKeyPair('ES256')).publicKey) });
    expect(refused.status).toBe(400);
  });

  it("replaces an agent's own key with the one it sends, and refuses the old one at once without a grace period", async () => {
    const first = await generateKeyPair('ES256');
    const agent = await createAgent(idp, org.token);
    const credential = await keyCredential(agent.agentId, { type: 'private_key_jwt', publicJwk: await exportJWK(first.publicKey) });
    const rotate = (body: unknown) => api(idp.url, org.token).post(`/api/v1/agents/${agent.agentId}/credentials/${credential.credentialId}/rotate`, { body });
    expect((await rotate({})).body.errors).toEqual([expect.objectContaining({ field: '/publicJwk' })]);
    const second = await generateKeyPair('ES256');
    const rotated = await rotate({ publicJwk: await exportJWK(second.publicKey) });
    expect(rotated.status).toBe(200);
    expect(rotated.body).not.toHaveProperty('privateKeyPem');
    expect((await tokenWithAssertion(await assertion(agent.agentId, { key: first.privateKey, kid: credential.kid, alg: 'ES256' }))).status).toBe(401);
    expect((await tokenWithAssertion(await assertion(agent.agentId, { key: second.privateKey, kid: rotated.body.kid, alg: 'ES256' }))).status).toBe(200);
  });
});

describe("an agent's JWKS", () => {
  it('publishes the public keys of its usable key credentials to anyone, and nothing of a revoked one', async () => {
    const { agentId, credential } = await keyAgent();
    const other = await keyCredential(agentId, { type: 'private_key_jwt', alg: 'RS256' });
    await api(idp.url, org.token).post(`/api/v1/agents/${agentId}/credentials`, { body: {} });
    const res = await call(idp.url, 'GET', `/api/v1/agents/${agentId}/jwks`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/jwk-set\+json/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=600');
    expect(res.body).toEqual({ keys: [credential.publicJwk, other.publicJwk] });
    await api(idp.url, org.token).delete(`/api/v1/agents/${agentId}/credentials/${other.credentialId}`);
    expect((await call(idp.url, 'GET', `/api/v1/agents/${agentId}/jwks`)).body).toEqual({ keys: [credential.publicJwk] });
    await api(idp.url, org.token).patch(`/api/v1/agents/${agentId}`, { body: { status: 'suspended' } });
    expect((await call(idp.url, 'GET', `/api/v1/agents/${agentId}/jwks`)).body).toEqual({ keys: [] });
    expect((await call(idp.url, 'GET', `/api/v1/agents/${randomUUID()}/jwks`)).status).toBe(404);
    expect((await call(idp.url, 'GET', `/api/v1/agents/not-an-id/jwks`)).status).toBe(404);
  });
});

describe('introspection and revocation with private_key_jwt', () => {
  it('authenticate a resource server by its key, once per assertion', async () => {
    const rs = await keyAgent({ type: 'private_key_jwt' }, { scopes: ['tokens:introspect'] });
    const { clientId, clientSecret } = await agentWithSecret(idp, org.token, { scopes: ['invoices:read'] });
    const token = (await requestToken(idp, clientId, clientSecret)).body.access_token;
    const introspect = (jwt: string) => call(idp.url, 'POST', '/token/introspect', form({ token, client_assertion_type: ASSERTION, client_assertion: jwt }));
    const jwt = await assertion(rs.agentId, rs.signer, {}, { aud: `${idp.url}/token` });
    const res = await introspect(jwt);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active: true, sub: clientId });
    const replay = await introspect(jwt);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
    const stranger = await introspect(await assertion(rs.agentId, { key: (await generateKeyPair('ES256')).privateKey, alg: 'ES256' }));
    expect(stranger.status).toBe(401);
    const otherAudience = await introspect(await assertion(rs.agentId, rs.signer, {}, { aud: 'https://other.example' }));
    expect(otherAudience.status).toBe(401);

    const revoke = await call(
      idp.url,
      'POST',
      '/token/revoke',
      form({ token, client_assertion_type: ASSERTION, client_assertion: await assertion(rs.agentId, rs.signer) }),
    );
    // The resource server is not the token's agent: revocation of another's token changes nothing (RFC 7009 §2.1 answers 200).
    expect(revoke.status).toBe(200);
    const own = await call(idp.url, 'POST', '/token/revoke', form({ token, client_id: clientId, client_secret: clientSecret }));
    expect(own.status).toBe(200);
    expect((await introspect(await assertion(rs.agentId, rs.signer))).body).toEqual({ active: false });
  });
});

describe('an unmodified openid-client', () => {
  it('gets, introspects and revokes tokens with private_key_jwt', async () => {
    const { agentId, credential } = await keyAgent({ type: 'private_key_jwt', alg: 'ES256' }, { scopes: ['invoices:read', 'tokens:introspect'] });
    const key = await importPKCS8(credential.privateKeyPem, 'ES256');
    const config = await oidc.discovery(new URL(idp.url), agentId, undefined, oidc.PrivateKeyJwt({ key, kid: credential.kid }), {
      execute: [oidc.allowInsecureRequests],
    });
    expect(config.serverMetadata().token_endpoint_auth_methods_supported).toContain('private_key_jwt');
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'invoices:read', resource: 'https://api.example.com' });
    expect(tokens.token_type).toBe('bearer');
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: true, sub: agentId });
    await oidc.tokenRevocation(config, tokens.access_token);
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toEqual({ active: false });
  });
});

describeOnPostgres('two instances', 'a second instance needs its own connections to one PostgreSQL database', () => {
  let replica: TestIdp;
  beforeAll(async () => {
    replica = await startTestIdp({ replicaOf: idp });
  });
  afterAll(() => replica.close());

  it('refuse an assertion used on the other one', async () => {
    const { agentId, signer } = await keyAgent();
    const jwt = await assertion(agentId, signer);
    expect((await tokenWithAssertion(jwt, {}, idp)).status).toBe(200);
    const replay = await tokenWithAssertion(jwt, {}, replica);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
  });

  it('refuse a key revoked on the other one at once', async () => {
    const { agentId, credential, signer } = await keyAgent();
    // Both instances have the agent's keys in memory.
    expect((await tokenWithAssertion(await assertion(agentId, signer), {}, idp)).status).toBe(200);
    expect((await tokenWithAssertion(await assertion(agentId, signer), {}, replica)).status).toBe(200);
    expect((await api(idp.url, org.token).delete(`/api/v1/agents/${agentId}/credentials/${credential.credentialId}`)).status).toBe(204);
    expect((await tokenWithAssertion(await assertion(agentId, signer), {}, replica)).status).toBe(401);
  });
});
