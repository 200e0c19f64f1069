import { randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importPKCS8 } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { basicAuthHeader } from '../src/http/basic-auth.ts';
import { accessToken, agentWithSecret, createAgent, createOrg, managementToken, operatorToken } from './factories.ts';
import { describeOnPostgres } from './helpers/postgres-only.ts';

// Token exchange (RFC 8693; design/delegation-and-federation.md, "Delegation") over real HTTP:
// chains of two and three hops with `act` nesting, narrowed scopes and lifetimes, the audience
// rules; every refusal with its error and audit reason; revocation and suspension cascading down
// a chain, on two instances at once; an actor with private_key_jwt; a DPoP-bound exchanged token.

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const API = 'https://api.example.com';
const OTHER_API = 'https://other.example.com';

let idp: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;
/** A resource server of the org that may introspect any of its tokens. */
let rs: { clientId: string; clientSecret: string };

// The clock of quotas runs from one minute into an hour, so that no hourly window ends during the file.
const started = Date.now();
const clockBase = Math.floor(started / 3_600_000) * 3_600_000 + 60_000;
const clock = () => clockBase + (Date.now() - started);

beforeAll(async () => {
  idp = await startTestIdp({ env: { MAX_DELEGATION_DEPTH: '3' }, clock });
  org = await createOrg(idp);
  rs = await agentWithSecret(idp, org.token, { scopes: ['tokens:introspect'] });
});
afterAll(() => idp.close());

type Agent = Awaited<ReturnType<typeof agentWithSecret>>;

function form(fields: Record<string, string>) {
  return { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams(fields).toString() };
}

function exchange(
  actor: Pick<Agent, 'clientId' | 'clientSecret'>,
  subjectToken: string,
  params: Record<string, string> = {},
  options: { target?: TestIdp; dpop?: string } = {},
) {
  const target = options.target ?? idp;
  return call(target.url, 'POST', '/token', {
    raw: form({ grant_type: GRANT, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, ...params }),
    headers: { authorization: basicAuthHeader(actor.clientId, actor.clientSecret), ...(options.dpop ? { dpop: options.dpop } : {}) },
  });
}

async function introspect(token: string, target: TestIdp = idp) {
  const res = await call(target.url, 'POST', '/token/introspect', {
    raw: form({ token }),
    headers: { authorization: basicAuthHeader(rs.clientId, rs.clientSecret) },
  });
  expect(res.status).toBe(200);
  return res.body;
}

async function revoke(by: Pick<Agent, 'clientId' | 'clientSecret'>, token: string, target: TestIdp = idp) {
  const res = await call(target.url, 'POST', '/token/revoke', {
    raw: form({ token }),
    headers: { authorization: basicAuthHeader(by.clientId, by.clientSecret) },
  });
  expect(res.status).toBe(200);
}

async function events(agentId: string, action: string) {
  const res = await api(idp.url, org.token).get(`/api/v1/audit?agentId=${agentId}&action=${action}&limit=50`);
  return res.body.data;
}

/** A subject agent A, and actors B and C that it lets act for it. */
async function chainOfAgents(subjectBody: Record<string, unknown> = {}) {
  const b = await agentWithSecret(idp, org.token, { scopes: ['orders:read'] });
  const c = await agentWithSecret(idp, org.token);
  const a = await agentWithSecret(idp, org.token, {
    scopes: ['invoices:read', 'invoices:write', 'invoices:pay'],
    audiences: [API, OTHER_API],
    mayAct: [b.clientId, c.clientId],
    ...subjectBody,
  });
  return { a, b, c };
}

describe('mayAct', () => {
  it('is set, shown and replaced through the API', async () => {
    const b = await createAgent(idp, org.token);
    const a = await createAgent(idp, org.token, { mayAct: [b.agentId] });
    expect(a.mayAct).toEqual([b.agentId]);
    const changed = await api(idp.url, org.token).patch(`/api/v1/agents/${a.agentId}`, { body: { mayAct: [] } });
    expect(changed.status).toBe(200);
    expect(changed.body.mayAct).toEqual([]);
    expect((await createAgent(idp, org.token)).mayAct).toEqual([]);
  });

  it.each<[string, () => Promise<string>]>([
    ['an agent of another org', async () => (await createAgent(idp, (await createOrg(idp)).token)).agentId],
    ['no agent at all', async () => randomUUID()],
  ])('refuses %s with 400', async (_what, id) => {
    const res = await api(idp.url, org.token).post('/api/v1/agents', { body: { name: 'a', mayAct: [await id()] } });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].field).toBe('/mayAct/0');
  });

  it('refuses the agent itself and more than 50 agents', async () => {
    const a = await createAgent(idp, org.token);
    const self = await api(idp.url, org.token).patch(`/api/v1/agents/${a.agentId}`, { body: { mayAct: [a.agentId] } });
    expect(self.status).toBe(400);
    const many = await api(idp.url, org.token).patch(`/api/v1/agents/${a.agentId}`, { body: { mayAct: Array.from({ length: 51 }, () => randomUUID()) } });
    expect(many.status).toBe(400);
  });
});

describe('an exchange', () => {
  it('is listed in the discovery metadata', async () => {
    const res = await call(idp.url, 'GET', '/.well-known/oauth-authorization-server');
    expect(res.body.grant_types_supported).toEqual(expect.arrayContaining(['client_credentials', GRANT]));
  });

  it('issues a token for the subject with the actor in act, narrowed, never longer-lived, and audited', async () => {
    const { a, b } = await chainOfAgents();
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret, { scope: 'invoices:read invoices:write' });
    const subject = decodeJwt(subjectToken);
    const res = await exchange(b, subjectToken, { scope: 'invoices:read' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'Bearer', scope: 'invoices:read' });
    const claims = decodeJwt(res.body.access_token);
    expect(claims).toMatchObject({ sub: a.clientId, client_id: b.clientId, act: { sub: b.clientId }, org_id: org.orgId, scope: 'invoices:read', aud: API });
    expect(claims.act).toEqual({ sub: b.clientId });
    expect(claims.exp!).toBeLessThanOrEqual(subject.exp!);
    expect(res.body.expires_in).toBeLessThanOrEqual(subject.exp! - Math.floor(Date.now() / 1000) + 1);

    expect(await introspect(res.body.access_token)).toMatchObject({ active: true, sub: a.clientId, client_id: b.clientId, act: { sub: b.clientId } });
    const [event] = await events(b.clientId, 'token.exchanged');
    expect(event).toMatchObject({
      actor: { type: 'client', id: b.clientId },
      outcome: 'success',
      details: {
        subject: a.clientId,
        actor: b.clientId,
        chain: [a.clientId, b.clientId],
        subjectJti: subject.jti,
        jti: claims.jti,
        scope: 'invoices:read',
        aud: API,
      },
    });
  });

  it('carries all of the subject token scopes by default, and a requested audience of the subject agent', async () => {
    const { a, b } = await chainOfAgents();
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret, { scope: 'invoices:read invoices:pay' });
    const res = await exchange(b, subjectToken, { resource: OTHER_API });
    expect(res.status).toBe(200);
    expect(decodeJwt(res.body.access_token)).toMatchObject({ scope: 'invoices:read invoices:pay', aud: OTHER_API });
    const viaAudience = await exchange(b, subjectToken, { audience: OTHER_API });
    expect(decodeJwt(viaAudience.body.access_token).aud).toBe(OTHER_API);
  });

  it('never outlives the subject token, even when the actor may have longer tokens', async () => {
    const b = await agentWithSecret(idp, org.token, { accessTokenTtlSeconds: 3600 });
    const a = await agentWithSecret(idp, org.token, { accessTokenTtlSeconds: 120, mayAct: [b.clientId] });
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret);
    const res = await exchange(b, subjectToken);
    expect(res.status).toBe(200);
    expect(res.body.expires_in).toBeLessThanOrEqual(120);
    expect(decodeJwt(res.body.access_token).exp).toBeLessThanOrEqual(decodeJwt(subjectToken).exp!);
  });

  it('nests act across three hops, and the chain is audited', async () => {
    const { a, b, c } = await chainOfAgents();
    const t0 = await accessToken(idp, a.clientId, a.clientSecret, { scope: 'invoices:read invoices:write' });
    const t1 = (await exchange(b, t0, { scope: 'invoices:read invoices:write' })).body.access_token;
    const second = await exchange(c, t1, { scope: 'invoices:read' });
    expect(second.status).toBe(200);
    const t2 = second.body.access_token;
    expect(decodeJwt(t2)).toMatchObject({ sub: a.clientId, client_id: c.clientId, act: { sub: c.clientId, act: { sub: b.clientId } }, scope: 'invoices:read' });
    expect(decodeJwt(t2).exp).toBeLessThanOrEqual(decodeJwt(t1).exp!);
    // The second hop cannot widen what the first narrowed.
    const wider = await exchange(c, (await exchange(b, t0, { scope: 'invoices:read' })).body.access_token, { scope: 'invoices:write' });
    expect(wider.status).toBe(400);
    expect(wider.body.error).toBe('invalid_scope');

    const third = await exchange(b, t2);
    expect(third.status).toBe(200);
    expect(decodeJwt(third.body.access_token).act).toEqual({ sub: b.clientId, act: { sub: c.clientId, act: { sub: b.clientId } } });
    expect(await introspect(third.body.access_token)).toMatchObject({
      active: true,
      act: { sub: b.clientId, act: { sub: c.clientId, act: { sub: b.clientId } } },
    });
    const [event] = await events(c.clientId, 'token.exchanged');
    expect(event.details).toMatchObject({ chain: [a.clientId, b.clientId, c.clientId], subjectJti: decodeJwt(t1).jti });
  });

  it('works with an actor_token of the caller itself', async () => {
    const { a, b } = await chainOfAgents();
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret);
    const own = await accessToken(idp, b.clientId, b.clientSecret);
    const res = await exchange(b, subjectToken, { actor_token: own, actor_token_type: ACCESS_TOKEN });
    expect(res.status).toBe(200);
  });

  it('opens /api/v1 for the subject through the shared bearer check, until the subject token is revoked', async () => {
    const b = await agentWithSecret(idp, org.token);
    const a = await agentWithSecret(idp, org.token, { scopes: ['agents:read'], mayAct: [b.clientId] });
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret, { resource: `${idp.url}/api/v1` });
    const res = await exchange(b, subjectToken);
    expect(res.status).toBe(200);
    const delegated = res.body.access_token;
    expect((await api(idp.url, delegated).get('/api/v1/agents')).status).toBe(200);
    await revoke(a, subjectToken);
    expect((await api(idp.url, delegated).get('/api/v1/agents')).status).toBe(401);
  });
});

describe('a refused exchange', () => {
  async function expectRefusal(res: { status: number; body: any }, actorId: string, error: string, reason: string) {
    expect(res.status).toBe(400);
    expect(res.body.error).toBe(error);
    expect(res.body.error_description).toEqual(expect.any(String));
    const [denied] = await events(actorId, 'token.denied');
    expect(denied.details).toMatchObject({ error, reason });
  }

  it('refuses a malformed or foreign subject token', async () => {
    const { b } = await chainOfAgents();
    await expectRefusal(await exchange(b, 'not-a-token'), b.clientId, 'invalid_request', 'subject_token_invalid');
    const { privateKey } = await generateKeyPair('RS256');
    const foreign = await new SignJWT({ client_id: b.clientId, org_id: org.orgId, jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'elsewhere' })
      .setIssuer('https://elsewhere.example')
      .setSubject(b.clientId)
      .setAudience(API)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    await expectRefusal(await exchange(b, foreign), b.clientId, 'invalid_request', 'subject_token_invalid');
  });

  it('refuses a revoked subject token, and one of a suspended agent', async () => {
    const { a, b } = await chainOfAgents();
    const revoked = await accessToken(idp, a.clientId, a.clientSecret);
    await revoke(a, revoked);
    await expectRefusal(await exchange(b, revoked), b.clientId, 'invalid_request', 'subject_token_inactive');
    const live = await accessToken(idp, a.clientId, a.clientSecret);
    expect((await api(idp.url, org.token).patch(`/api/v1/agents/${a.clientId}`, { body: { status: 'suspended' } })).status).toBe(200);
    await expectRefusal(await exchange(b, live), b.clientId, 'invalid_request', 'subject_token_inactive');
  });

  it('refuses a subject token of another org', async () => {
    const other = await createOrg(idp);
    const b = await agentWithSecret(idp, org.token);
    const a = await agentWithSecret(idp, other.token);
    await expectRefusal(await exchange(b, await accessToken(idp, a.clientId, a.clientSecret)), b.clientId, 'invalid_request', 'subject_token_other_org');
  });

  it('refuses an actor the subject agent does not list, and at once after it is removed', async () => {
    const { a, b } = await chainOfAgents();
    const stranger = await agentWithSecret(idp, org.token);
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret);
    await expectRefusal(await exchange(stranger, subjectToken), stranger.clientId, 'invalid_request', 'actor_not_allowed');
    expect((await exchange(b, subjectToken)).status).toBe(200);
    expect((await api(idp.url, org.token).patch(`/api/v1/agents/${a.clientId}`, { body: { mayAct: [] } })).status).toBe(200);
    await expectRefusal(await exchange(b, subjectToken), b.clientId, 'invalid_request', 'actor_not_allowed');
  });

  it("refuses an actor_token that is not the caller's", async () => {
    const { a, b, c } = await chainOfAgents();
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret);
    const notMine = await accessToken(idp, c.clientId, c.clientSecret);
    await expectRefusal(
      await exchange(b, subjectToken, { actor_token: notMine, actor_token_type: ACCESS_TOKEN }),
      b.clientId,
      'invalid_request',
      'actor_token_not_caller',
    );
  });

  it('refuses a chain deeper than MAX_DELEGATION_DEPTH (3 here)', async () => {
    const { a, b, c } = await chainOfAgents();
    let token = await accessToken(idp, a.clientId, a.clientSecret);
    for (const actor of [b, c, b]) {
      const res = await exchange(actor, token);
      expect(res.status).toBe(200);
      token = res.body.access_token;
    }
    await expectRefusal(await exchange(c, token), c.clientId, 'invalid_request', 'delegation_too_deep');
  });

  it('refuses a scope beyond the subject token with invalid_scope', async () => {
    const { a, b } = await chainOfAgents();
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret, { scope: 'invoices:read' });
    // The actor's own scope does not count either: only the subject's.
    await expectRefusal(await exchange(b, subjectToken, { scope: 'invoices:write' }), b.clientId, 'invalid_scope', 'scope_beyond_subject');
    await expectRefusal(await exchange(b, subjectToken, { scope: 'orders:read' }), b.clientId, 'invalid_scope', 'scope_beyond_subject');
  });

  it('refuses a resource beyond the subject agent with invalid_target', async () => {
    const { a, b } = await chainOfAgents();
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret);
    await expectRefusal(await exchange(b, subjectToken, { resource: 'https://nowhere.example' }), b.clientId, 'invalid_target', 'resource_not_allowed');
  });

  it('refuses a request without subject_token, and an actor_token without its type', async () => {
    const { a, b } = await chainOfAgents();
    const missing = await call(idp.url, 'POST', '/token', {
      raw: form({ grant_type: GRANT, subject_token_type: ACCESS_TOKEN }),
      headers: { authorization: basicAuthHeader(b.clientId, b.clientSecret) },
    });
    await expectRefusal(missing, b.clientId, 'invalid_request', 'subject_token_missing');
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret);
    const own = await accessToken(idp, b.clientId, b.clientSecret);
    await expectRefusal(await exchange(b, subjectToken, { actor_token: own }), b.clientId, 'invalid_request', 'invalid_actor_token');
  });

  it('refuses another subject_token_type or requested_token_type', async () => {
    const { a, b } = await chainOfAgents();
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret);
    await expectRefusal(
      await exchange(b, subjectToken, { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }),
      b.clientId,
      'invalid_request',
      'unsupported_subject_token_type',
    );
    await expectRefusal(
      await exchange(b, subjectToken, { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }),
      b.clientId,
      'invalid_request',
      'unsupported_requested_token_type',
    );
  });

  it("counts towards the actor's token quota: 429 once it is used up, recorded as quota_exceeded", async () => {
    const b = await agentWithSecret(idp, org.token, { tokenQuota: { perHour: 2 } });
    const a = await agentWithSecret(idp, org.token, { mayAct: [b.clientId] });
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret);
    for (let i = 0; i < 2; i++) expect((await exchange(b, subjectToken)).status).toBe(200);
    const refused = await exchange(b, subjectToken);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toBe('too_many_requests');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const [denied] = await events(b.clientId, 'token.denied');
    expect(denied.details).toMatchObject({ reason: 'quota_exceeded' });
  });

  it('never records a token in an audit event', async () => {
    const { a, b } = await chainOfAgents();
    const subjectToken = await accessToken(idp, a.clientId, a.clientSecret);
    const res = await exchange(b, subjectToken);
    const all = JSON.stringify(await api(idp.url, org.token).get(`/api/v1/audit?agentId=${b.clientId}&limit=50`));
    expect(all).not.toContain(subjectToken);
    expect(all).not.toContain(res.body.access_token);
  });
});

describe('revocation', () => {
  async function twoHops() {
    const { a, b, c } = await chainOfAgents();
    const t0 = await accessToken(idp, a.clientId, a.clientSecret);
    const t1 = (await exchange(b, t0)).body.access_token as string;
    const t2 = (await exchange(c, t1)).body.access_token as string;
    expect((await introspect(t2)).active).toBe(true);
    return { a, b, c, t0, t1, t2 };
  }

  it('of the subject token makes both hops inactive', async () => {
    const { a, t0, t1, t2 } = await twoHops();
    await revoke(a, t0);
    expect(await introspect(t1)).toEqual({ active: false });
    expect(await introspect(t2)).toEqual({ active: false });
  });

  it('of the first hop by its actor makes it and the second hop inactive, not the subject token', async () => {
    const { b, t0, t1, t2 } = await twoHops();
    await revoke(b, t1);
    expect(await introspect(t1)).toEqual({ active: false });
    expect(await introspect(t2)).toEqual({ active: false });
    expect((await introspect(t0)).active).toBe(true);
  });

  it('of the last hop by its actor leaves the rest of the chain active', async () => {
    const { c, t1, t2 } = await twoHops();
    await revoke(c, t2);
    expect(await introspect(t2)).toEqual({ active: false });
    expect((await introspect(t1)).active).toBe(true);
  });

  it('cascades when a middle agent is suspended, and ends when it is reactivated', async () => {
    const { b, t0, t2 } = await twoHops();
    expect((await api(idp.url, org.token).patch(`/api/v1/agents/${b.clientId}`, { body: { status: 'suspended' } })).status).toBe(200);
    expect(await introspect(t2)).toEqual({ active: false });
    expect((await introspect(t0)).active).toBe(true);
    expect((await api(idp.url, org.token).patch(`/api/v1/agents/${b.clientId}`, { body: { status: 'active' } })).status).toBe(200);
    expect((await introspect(t2)).active).toBe(true);
  });

  it('cascades when the subject agent is decommissioned', async () => {
    const { a, t2 } = await twoHops();
    expect((await api(idp.url, org.token).delete(`/api/v1/agents/${a.clientId}`)).status).toBe(204);
    expect(await introspect(t2)).toEqual({ active: false });
  });

  it('cascades when the key that signed a token up the chain is revoked, though the last hop has another key', async () => {
    const { a, b, c } = await chainOfAgents();
    const t0 = await accessToken(idp, a.clientId, a.clientSecret);
    const t1 = (await exchange(b, t0)).body.access_token as string;
    const operator = api(idp.url, await operatorToken(idp, 'keys:read keys:write'));
    expect((await operator.post('/api/v1/keys/rotate')).status).toBe(200);
    const t2 = (await exchange(c, t1)).body.access_token as string;
    const oldKid = decodeProtectedHeader(t1).kid!;
    expect(decodeProtectedHeader(t2).kid).not.toBe(oldKid);
    expect((await introspect(t2)).active).toBe(true);
    expect((await operator.post(`/api/v1/keys/${oldKid}/revoke`)).status).toBe(200);
    expect(await introspect(t2)).toEqual({ active: false });
    // The org's management token was signed by that key too.
    org.token = await managementToken(idp, org.admin.clientId, org.admin.clientSecret);
  });
});

describe('client authentication and DPoP', () => {
  it('accepts an actor authenticating with private_key_jwt', async () => {
    const b = await createAgent(idp, org.token);
    const key = await api(idp.url, org.token).post(`/api/v1/agents/${b.agentId}/credentials`, { body: { type: 'private_key_jwt' } });
    expect(key.status).toBe(201);
    const a = await agentWithSecret(idp, org.token, { scopes: ['invoices:read'], mayAct: [b.agentId] });
    const signer = await importPKCS8(key.body.privateKeyPem, key.body.alg);
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: key.body.alg, kid: key.body.kid })
      .setIssuer(b.agentId)
      .setSubject(b.agentId)
      .setAudience(idp.url)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(signer);
    const res = await call(idp.url, 'POST', '/token', {
      raw: form({
        grant_type: GRANT,
        subject_token: await accessToken(idp, a.clientId, a.clientSecret),
        subject_token_type: ACCESS_TOKEN,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
    expect(res.status).toBe(200);
    expect(decodeJwt(res.body.access_token)).toMatchObject({ sub: a.clientId, client_id: b.agentId, act: { sub: b.agentId } });
    const [event] = await events(b.agentId, 'token.exchanged');
    expect(event.details.credentialId).toBe(key.body.credentialId);
  });

  it('binds the exchanged token to the DPoP key of the actor', async () => {
    const { a, b } = await chainOfAgents();
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const proof = await new SignJWT({ htm: 'POST', htu: `${idp.url}/token`, jti: randomUUID(), iat: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(privateKey);
    const res = await exchange(b, await accessToken(idp, a.clientId, a.clientSecret), {}, { dpop: proof });
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('DPoP');
    const jkt = await calculateJwkThumbprint(jwk);
    expect(decodeJwt(res.body.access_token).cnf).toEqual({ jkt });
    expect(await introspect(res.body.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
    // The proof is accepted once.
    const replay = await exchange(b, await accessToken(idp, a.clientId, a.clientSecret), {}, { dpop: proof });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_dpop_proof');
  });

  it('requires a DPoP proof from an actor with requireDpop', async () => {
    const b = await agentWithSecret(idp, org.token, { requireDpop: true });
    const a = await agentWithSecret(idp, org.token, { mayAct: [b.clientId] });
    const res = await exchange(b, await accessToken(idp, a.clientId, a.clientSecret));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_dpop_proof');
  });
});

describeOnPostgres('two instances', 'a second instance needs its own connections to one PostgreSQL database', () => {
  let replica: TestIdp;
  beforeAll(async () => {
    replica = await startTestIdp({ replicaOf: idp });
  });
  afterAll(() => replica.close());

  it('a revocation on one makes the exchanged tokens inactive on the other at once', async () => {
    const { a, b, c } = await chainOfAgents();
    const t0 = await accessToken(idp, a.clientId, a.clientSecret);
    const t1 = (await exchange(b, t0, {}, { target: replica })).body.access_token as string;
    const t2 = (await exchange(c, t1, {}, { target: replica })).body.access_token as string;
    // Both instances have the chain in memory.
    expect((await introspect(t2, idp)).active).toBe(true);
    expect((await introspect(t2, replica)).active).toBe(true);
    await revoke(a, t0, idp);
    expect(await introspect(t1, replica)).toEqual({ active: false });
    expect(await introspect(t2, replica)).toEqual({ active: false });
  });

  it('a suspension on one makes the exchanged tokens inactive on the other at once', async () => {
    const { b, c, a } = await chainOfAgents();
    const t1 = (await exchange(b, await accessToken(idp, a.clientId, a.clientSecret))).body.access_token as string;
    const t2 = (await exchange(c, t1)).body.access_token as string;
    expect((await introspect(t2, replica)).active).toBe(true);
    expect((await api(idp.url, org.token).patch(`/api/v1/agents/${b.clientId}`, { body: { status: 'suspended' } })).status).toBe(200);
    expect(await introspect(t2, replica)).toEqual({ active: false });
  });
});
