import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { SignJWT, calculateJwkThumbprint, createRemoteJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { createAgent, createOrg } from './factories.ts';
import { startJwtIssuer, ISSUER_JWKS_PATH, type JwtIssuer } from './helpers/jwt-issuer.ts';
import { FAILURE_MEMORY_MS, REFETCH_INTERVAL_MS } from '../src/oauth/federation/issuer-keys.ts';

// Federation (RFC 7523 §2.1 jwt-bearer; design/delegation-and-federation.md) over real HTTP: a
// real issuer started here on loopback (its discovery document and JWKS), agents mapped to its
// subjects through the management API, and /token with no client authentication: good
// exchanges, DPoP, the scope and audience rules, every refusal with its audit reason, a key
// rotation at the issuer, mappings removed and agents suspended, (issuer, subject) held once in
// the whole service, and the outbound fetch rules (redirects, oversized and slow answers).

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const FETCH_TIMEOUT_MS = 300;

let idp: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;
let issuer: JwtIssuer;
/** How far the service's clock is ahead of the wall clock (the issuer-key cache runs on it). */
let clockAhead = 0;
const issuers: JwtIssuer[] = [];

beforeAll(async () => {
  idp = await startTestIdp({
    env: { FEDERATION_ALLOW_INSECURE_ISSUERS: 'true', FEDERATION_FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS) },
    clock: () => Date.now() + clockAhead,
  });
  org = await createOrg(idp);
  issuer = await newIssuer();
});
afterAll(async () => {
  await idp.close();
  for (const i of issuers) await i.close();
});

async function newIssuer(options: Parameters<typeof startJwtIssuer>[0] = {}) {
  const started = await startJwtIssuer(options);
  issuers.push(started);
  return started;
}

function form(fields: Record<string, string>, headers: Record<string, string> = {}) {
  return { raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams(fields).toString() }, headers };
}

function exchange(assertion: string, params: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return call(idp.url, 'POST', '/token', form({ grant_type: JWT_BEARER, assertion, ...params }, headers));
}

let subjects = 0;
const newSubject = () => `repo:acme/app:ref:refs/heads/main:${process.pid}:${++subjects}`;

/** An agent of `org` mapped to a new subject of `from`. */
async function federatedAgent(from: JwtIssuer = issuer, body: Record<string, unknown> = {}, identity: Record<string, unknown> = {}) {
  const subject = newSubject();
  const agent = await createAgent(idp, org.token, {
    scopes: ['invoices:read', 'invoices:write'],
    audiences: ['https://api.example.com'],
    federatedIdentities: [{ issuer: from.url, subject, ...identity }],
    ...body,
  });
  return { agentId: agent.agentId as string, subject, agent };
}

async function events(agentId: string) {
  const res = await api(idp.url, org.token).get(`/api/v1/audit?agentId=${agentId}&limit=50`);
  return res.body.data.filter((e: { action: string }) => e.action.startsWith('token.'));
}

/** The reason of the newest token.denied event (the root org sees the ones of no org). */
async function lastDenialReason(agentId?: string): Promise<string | undefined> {
  if (agentId) return (await events(agentId)).find((e: { action: string }) => e.action === 'token.denied')?.details.reason;
  const operator = await api(idp.url, await rootToken()).get('/api/v1/audit?action=token.denied&limit=1');
  return operator.body.data[0]?.details.reason;
}

async function rootToken() {
  const { operatorToken } = await import('./factories.ts');
  return operatorToken(idp);
}

async function expectRefused(assertion: string, reason: string, agentId?: string) {
  const res = await exchange(assertion);
  expect({ status: res.status, error: res.body.error }).toEqual({ status: 400, error: 'invalid_grant' });
  expect(await lastDenialReason(agentId)).toBe(reason);
  return res;
}

describe('a federated identity', () => {
  it('is shown on the agent, with its audience defaulting to this IdP (null)', async () => {
    const { agentId, subject } = await federatedAgent();
    const res = await api(idp.url, org.token).get(`/api/v1/agents/${agentId}`);
    expect(res.body.federatedIdentities).toEqual([{ issuer: issuer.url, subject, audience: null }]);
  });

  it('is refused with an issuer that is not https, or http on a loopback host', async () => {
    for (const bad of ['http://issuer.example.com', 'ftp://127.0.0.1/', 'not a url']) {
      const res = await api(idp.url, org.token).post('/api/v1/agents', { body: { name: 'x', federatedIdentities: [{ issuer: bad, subject: 's' }] } });
      expect(res.status).toBe(400);
    }
    const https = await api(idp.url, org.token).post('/api/v1/agents', {
      body: { name: 'x', federatedIdentities: [{ issuer: 'https://token.actions.githubusercontent.com', subject: newSubject() }] },
    });
    expect(https.status).toBe(201);
  });

  it('is at most 20 per agent, and no pair twice', async () => {
    const many = Array.from({ length: 21 }, (_, i) => ({ issuer: issuer.url, subject: `s-${i}-${randomUUID()}` }));
    expect((await api(idp.url, org.token).post('/api/v1/agents', { body: { name: 'x', federatedIdentities: many } })).status).toBe(400);
    const twice = [
      { issuer: issuer.url, subject: 'same' },
      { issuer: issuer.url, subject: 'same' },
    ];
    const res = await api(idp.url, org.token).post('/api/v1/agents', { body: { name: 'x', federatedIdentities: twice } });
    expect(res.status).toBe(400);
  });

  it('maps to one agent in the whole service: the same pair in another org is 409', async () => {
    const { subject } = await federatedAgent();
    const other = await createOrg(idp);
    const res = await api(idp.url, other.token).post('/api/v1/agents', { body: { name: 'thief', federatedIdentities: [{ issuer: issuer.url, subject }] } });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('federated_identity_taken');
    const mine = await createAgent(idp, other.token, { name: 'mine' });
    const patch = await api(idp.url, other.token).patch(`/api/v1/agents/${mine.agentId}`, { body: { federatedIdentities: [{ issuer: issuer.url, subject }] } });
    expect(patch.status).toBe(409);
  });
});

describe('POST /token with a jwt-bearer assertion', () => {
  it("gets the agent's token, as client_credentials would, with no client authentication", async () => {
    const { agentId, subject } = await federatedAgent();
    const assertion = await issuer.sign({ sub: subject, aud: idp.url });
    const res = await exchange(assertion);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', scope: 'invoices:read invoices:write' });
    const { payload, protectedHeader } = await jwtVerify(res.body.access_token, createRemoteJWKSet(new URL(`${idp.url}/.well-known/jwks.json`)), {
      issuer: idp.url,
      audience: 'https://api.example.com',
    });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ sub: agentId, client_id: agentId, org_id: org.orgId });
    const issued = (await events(agentId)).find((e: { action: string }) => e.action === 'token.issued');
    expect(issued.details).toMatchObject({ grant: 'jwt-bearer', federatedIssuer: issuer.url, federatedSubject: subject, jti: payload.jti });
    expect(JSON.stringify(issued)).not.toContain(assertion);
  });

  it('limits scope and audience as for client_credentials', async () => {
    const { subject } = await federatedAgent();
    const narrow = await exchange(await issuer.sign({ sub: subject, aud: idp.url }), { scope: 'invoices:read' });
    expect(narrow.body.scope).toBe('invoices:read');
    const wider = await exchange(await issuer.sign({ sub: subject, aud: idp.url }), { scope: 'invoices:delete' });
    expect([wider.status, wider.body.error]).toEqual([400, 'invalid_scope']);
    const elsewhere = await exchange(await issuer.sign({ sub: subject, aud: idp.url }), { resource: 'https://other.example.com' });
    expect([elsewhere.status, elsewhere.body.error]).toEqual([400, 'invalid_target']);
  });

  it('binds the token to a DPoP key (RFC 9449) when a proof comes along', async () => {
    const { subject } = await federatedAgent();
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const proof = await new SignJWT({ htm: 'POST', htu: `${idp.url}/token`, jti: randomUUID(), iat: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(privateKey);
    const res = await exchange(await issuer.sign({ sub: subject, aud: idp.url }), {}, { dpop: proof });
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('DPoP');
    const { payload } = await jwtVerify(res.body.access_token, createRemoteJWKSet(new URL(`${idp.url}/.well-known/jwks.json`)));
    expect((payload.cnf as { jkt: string }).jkt).toBe(await calculateJwkThumbprint(jwk));
  });

  it('accepts the audience the identity names instead of the issuer URL', async () => {
    const { agentId, subject } = await federatedAgent(issuer, {}, { audience: 'https://idp.example.com/ci' });
    expect((await exchange(await issuer.sign({ sub: subject, aud: ['https://idp.example.com/ci', 'x'] }))).status).toBe(200);
    await expectRefused(await issuer.sign({ sub: subject, aud: idp.url }), 'audience', agentId);
  });

  describe('refuses with invalid_grant and the reason in token.denied', () => {
    let agentId: string;
    let subject: string;
    const now = () => Math.floor(Date.now() / 1000);
    beforeAll(async () => {
      ({ agentId, subject } = await federatedAgent());
    });

    it('an expired assertion, or one without exp', async () => {
      await expectRefused(await issuer.sign({ sub: subject, aud: idp.url, iat: now() - 600, exp: now() - 120 }), 'expired', agentId);
      await expectRefused(await issuer.sign({ sub: subject, aud: idp.url }, { omit: ['exp'] }), 'expired', agentId);
    });

    it('an assertion valid for more than an hour', async () => {
      await expectRefused(await issuer.sign({ sub: subject, aud: idp.url, exp: now() + 7200 }), 'too_long', agentId);
    });

    it('another audience', async () => {
      await expectRefused(await issuer.sign({ sub: subject, aud: 'https://someone-else.example.com' }), 'audience', agentId);
    });

    it('nbf or iat in the future', async () => {
      await expectRefused(await issuer.sign({ sub: subject, aud: idp.url, nbf: now() + 600 }), 'not_yet_valid', agentId);
      await expectRefused(await issuer.sign({ sub: subject, aud: idp.url, iat: now() + 600 }), 'issued_in_future', agentId);
    });

    it('a signature by another key under a published kid', async () => {
      const { privateKey } = await generateKeyPair('ES256');
      const forged = await issuer.sign({ sub: subject, aud: idp.url }, { key: { ...issuer.keys[0], privateKey } });
      await expectRefused(forged, 'bad_signature', agentId);
    });

    it('a symmetric (HS256) or unsigned assertion', async () => {
      const hs = await new SignJWT({ iss: issuer.url, sub: subject, aud: idp.url, exp: now() + 60 })
        .setProtectedHeader({ alg: 'HS256', kid: issuer.keys[0].kid })
        .sign(new TextEncoder().encode('a shared secret of at least 32 bytes!!'));
      await expectRefused(hs, 'bad_algorithm', agentId);
      const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
      const body = Buffer.from(JSON.stringify({ iss: issuer.url, sub: subject, aud: idp.url, exp: now() + 60 })).toString('base64url');
      await expectRefused(`${header}.${body}.`, 'bad_algorithm', agentId);
    });

    it('a replayed jti', async () => {
      const assertion = await issuer.sign({ sub: subject, aud: idp.url });
      expect((await exchange(assertion)).status).toBe(200);
      await expectRefused(assertion, 'replayed', agentId);
    });

    it('an issuer no agent federates with, and a subject of a known issuer that is mapped to none', async () => {
      const stranger = await newIssuer();
      await expectRefused(await stranger.sign({ sub: subject, aud: idp.url }), 'unknown_issuer');
      await expectRefused(await issuer.sign({ sub: 'repo:acme/unknown', aud: idp.url }), 'unknown_subject');
      await expectRefused('not-a-jwt', 'malformed');
    });

    it('with client authentication as well: the grant is for workloads that have none', async () => {
      const res = await call(
        idp.url,
        'POST',
        '/token',
        form({ grant_type: JWT_BEARER, assertion: await issuer.sign({ sub: subject, aud: idp.url }), client_id: agentId, client_secret: 'x' }),
      );
      expect(res.status).toBe(401);
    });
  });

  it('refuses a body over 56 KiB as the provider always did, declared or chunked (400 invalid_request)', async () => {
    const big = 'x'.repeat(60 * 1024);
    const declared = await call(idp.url, 'POST', '/token', form({ grant_type: JWT_BEARER, assertion: big }));
    expect([declared.status, declared.body.error]).toEqual([400, 'invalid_request']);
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${idp.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write(`grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=`);
      req.write(big);
      req.end();
    });
    expect([chunked.status, JSON.parse(chunked.body).error]).toEqual([400, 'invalid_request']);
  });

  it('stops at once when the mapping is removed, and again works when it is back', async () => {
    const { agentId, subject } = await federatedAgent();
    expect((await exchange(await issuer.sign({ sub: subject, aud: idp.url }))).status).toBe(200);
    const removed = await api(idp.url, org.token).patch(`/api/v1/agents/${agentId}`, { body: { federatedIdentities: [] } });
    expect(removed.body.federatedIdentities).toEqual([]);
    // Other agents still federate with the issuer: it is the subject that is unknown now.
    await expectRefused(await issuer.sign({ sub: subject, aud: idp.url }), 'unknown_subject');
    await api(idp.url, org.token).patch(`/api/v1/agents/${agentId}`, { body: { federatedIdentities: [{ issuer: issuer.url, subject }] } });
    expect((await exchange(await issuer.sign({ sub: subject, aud: idp.url }))).status).toBe(200);
  });

  it('refuses a suspended agent at once, and a decommissioned one for good', async () => {
    const { agentId, subject } = await federatedAgent();
    await api(idp.url, org.token).patch(`/api/v1/agents/${agentId}`, { body: { status: 'suspended' } });
    await expectRefused(await issuer.sign({ sub: subject, aud: idp.url }), 'agent_suspended', agentId);
    await api(idp.url, org.token).patch(`/api/v1/agents/${agentId}`, { body: { status: 'active' } });
    expect((await exchange(await issuer.sign({ sub: subject, aud: idp.url }))).status).toBe(200);
    expect((await api(idp.url, org.token).delete(`/api/v1/agents/${agentId}`)).status).toBe(204);
    const res = await exchange(await issuer.sign({ sub: subject, aud: idp.url }));
    expect([res.status, res.body.error]).toEqual([400, 'invalid_grant']);
    // Its identities went with it: the pair is free for another agent.
    expect((await createAgent(idp, org.token, { federatedIdentities: [{ issuer: issuer.url, subject }] })).federatedIdentities).toHaveLength(1);
  });
});

describe("the issuer's keys", () => {
  it('follow a rotation at the issuer: a new kid is fetched (at most once a minute), a removed one is refused', async () => {
    const rotating = await newIssuer();
    const { agentId, subject } = await federatedAgent(rotating);
    const oldKey = rotating.keys[0];
    expect((await exchange(await rotating.sign({ sub: subject, aud: idp.url }))).status).toBe(200);
    expect(rotating.jwksFetches).toBe(1);
    // Cached: no fetch per request.
    expect((await exchange(await rotating.sign({ sub: subject, aud: idp.url }))).status).toBe(200);
    expect(rotating.jwksFetches).toBe(1);

    await rotating.rotate();
    // The fetch was less than a minute ago: the unknown kid makes no new fetch yet.
    await expectRefused(await rotating.sign({ sub: subject, aud: idp.url }), 'unknown_key', agentId);
    expect(rotating.jwksFetches).toBe(1);

    clockAhead += REFETCH_INTERVAL_MS + 1000;
    expect((await exchange(await rotating.sign({ sub: subject, aud: idp.url }))).status).toBe(200);
    expect(rotating.jwksFetches).toBe(2);
    await expectRefused(await rotating.sign({ sub: subject, aud: idp.url }, { key: oldKey }), 'unknown_key', agentId);
  });

  it('are found through RFC 8414 metadata when there is no OpenID discovery document', async () => {
    const only8414 = await newIssuer();
    only8414.override('/.well-known/openid-configuration', (_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    only8414.override('/.well-known/oauth-authorization-server', (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: only8414.url, jwks_uri: only8414.url + ISSUER_JWKS_PATH }));
    });
    const { subject } = await federatedAgent(only8414);
    expect((await exchange(await only8414.sign({ sub: subject, aud: idp.url }))).status).toBe(200);
  });

  it('are refused from a discovery document that names another issuer', async () => {
    const liar = await newIssuer();
    liar.override('/.well-known/openid-configuration', (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: issuer.url, jwks_uri: issuer.url + ISSUER_JWKS_PATH }));
    });
    const { agentId, subject } = await federatedAgent(liar);
    // Signed with the other issuer's key, which the lie would have made acceptable.
    await expectRefused(await liar.sign({ sub: subject, aud: idp.url }, { key: issuer.keys[0] }), 'issuer_bad_metadata', agentId);
  });

  it('are not fetched through a redirect', async () => {
    const redirecting = await newIssuer();
    redirecting.override('/.well-known/openid-configuration', (_req, res) => {
      res.statusCode = 302;
      res.setHeader('location', `${issuer.url}/.well-known/openid-configuration`);
      res.end();
    });
    const { agentId, subject } = await federatedAgent(redirecting);
    await expectRefused(await redirecting.sign({ sub: subject, aud: idp.url }), 'issuer_redirect', agentId);
  });

  it('are cut off past the size cap', async () => {
    const huge = await newIssuer();
    huge.override(ISSUER_JWKS_PATH, (_req, res) => {
      res.setHeader('content-type', 'application/json');
      // No Content-Length: the cap holds on what arrives, not on what is declared.
      res.write(`{"keys":[${'{"kty":"EC"},'.repeat(30_000)}`);
      res.end('{}]}');
    });
    const { agentId, subject } = await federatedAgent(huge);
    await expectRefused(await huge.sign({ sub: subject, aud: idp.url }), 'issuer_too_large', agentId);
  });

  it('are given up on when the issuer answers too slowly, and not asked again for a while', async () => {
    const slow = await newIssuer();
    let asked = 0;
    // Answers only when the issuer closes (after the test): well after the fetch deadline.
    slow.override('/.well-known/openid-configuration', () => {
      asked++;
    });
    const { agentId, subject } = await federatedAgent(slow);
    await expectRefused(await slow.sign({ sub: subject, aud: idp.url }), 'issuer_timeout', agentId);
    expect(asked).toBe(1);
    // The failure is remembered: the next request does not wait on the issuer again.
    await expectRefused(await slow.sign({ sub: subject, aud: idp.url }), 'issuer_timeout', agentId);
    expect(asked).toBe(1);
    clockAhead += FAILURE_MEMORY_MS + 1000;
    slow.override('/.well-known/openid-configuration', undefined);
    expect((await exchange(await slow.sign({ sub: subject, aud: idp.url }))).status).toBe(200);
  });

  it('never name an assertion in an audit event (the suite scans logs and tables for JWTs too)', async () => {
    const { agentId, subject } = await federatedAgent();
    const assertion = await issuer.sign({ sub: subject, aud: idp.url });
    await exchange(assertion);
    await exchange(assertion);
    const all = JSON.stringify(await events(agentId));
    expect(all).toContain('replayed');
    expect(all).not.toContain(assertion.split('.')[2]);
    expect(decodeProtectedHeader(assertion).kid).toBe(issuer.keys[0].kid);
  });
});
