import { createHash, randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { basicAuthHeader } from '../src/http/basic-auth.ts';
import { agentWithSecret, createOrg } from './factories.ts';
import { describeOnPostgres } from './helpers/postgres-only.ts';

// DPoP (RFC 9449; design/keys-and-dpop.md) over real HTTP: bound tokens from /token, their
// introspection, requireDpop, /api/v1 (and /mcp) as a DPoP resource server with every refusal,
// proofs replayed across instances, and an unmodified openid-client.

let idp: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  idp = await startTestIdp();
  org = await createOrg(idp);
});
afterAll(() => idp.close());

interface ProofKey {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function proofKey(alg = 'ES256'): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

async function proof(key: ProofKey, htm: string, htu: string, options: { token?: string; iat?: number; jti?: string; alg?: string; typ?: string } = {}) {
  return new SignJWT({
    htm,
    htu,
    jti: options.jti ?? randomUUID(),
    iat: options.iat ?? Math.floor(Date.now() / 1000),
    ...(options.token ? { ath: createHash('sha256').update(options.token).digest('base64url') } : {}),
  })
    .setProtectedHeader({ alg: options.alg ?? 'ES256', typ: options.typ ?? 'dpop+jwt', jwk: key.jwk })
    .sign(key.privateKey);
}

function tokenRequest(clientId: string, clientSecret: string, params: Record<string, string>, dpop?: string, target: TestIdp = idp) {
  return call(target.url, 'POST', '/token', {
    raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams({ grant_type: 'client_credentials', ...params }).toString() },
    headers: { authorization: basicAuthHeader(clientId, clientSecret), ...(dpop ? { dpop } : {}) },
  });
}

/** A management agent of the org (agents:read) with a DPoP-bound token for /api/v1. */
async function boundManagementToken(key: ProofKey) {
  const agent = await agentWithSecret(idp, org.token, { scopes: ['agents:read'] });
  const res = await tokenRequest(agent.clientId, agent.clientSecret, { resource: `${idp.url}/api/v1` }, await proof(key, 'POST', `${idp.url}/token`));
  expect(res.status).toBe(200);
  return { ...agent, token: res.body.access_token as string };
}

describe('/token with a DPoP proof', () => {
  it('issues a DPoP-bound token that introspects as DPoP with its key thumbprint', async () => {
    const key = await proofKey();
    const agent = await agentWithSecret(idp, org.token, { scopes: ['invoices:read'], audiences: ['https://api.example.com'] });
    const res = await tokenRequest(agent.clientId, agent.clientSecret, {}, await proof(key, 'POST', `${idp.url}/token`));
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('DPoP');
    expect(decodeJwt(res.body.access_token).cnf).toEqual({ jkt: key.jkt });

    const rs = await agentWithSecret(idp, org.token, { scopes: ['tokens:introspect'] });
    const introspection = await call(idp.url, 'POST', '/token/introspect', {
      raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams({ token: res.body.access_token }).toString() },
      headers: { authorization: basicAuthHeader(rs.clientId, rs.clientSecret) },
    });
    expect(introspection.body).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: key.jkt } });

    const events = await api(idp.url, org.token).get(`/api/v1/audit?agentId=${agent.clientId}&action=token.issued`);
    expect(events.body.data[0].details).toMatchObject({ dpopJkt: key.jkt });
  });

  it.each<[string, (key: ProofKey) => Promise<string>]>([
    ['another URL', (k) => proof(k, 'POST', 'https://elsewhere.example/token')],
    ['another method', (k) => proof(k, 'GET', `${idp.url}/token`)],
    ['an old iat', (k) => proof(k, 'POST', `${idp.url}/token`, { iat: Math.floor(Date.now() / 1000) - 3600 })],
    ['a wrong typ', (k) => proof(k, 'POST', `${idp.url}/token`, { typ: 'JWT' })],
    ['a bad signature', async (k) => (await proof(k, 'POST', `${idp.url}/token`)).slice(0, -4) + 'AAAA'],
    ['not a JWT', async () => 'not-a-proof'],
  ])('refuses a proof for %s with 400 invalid_dpop_proof', async (_what, make) => {
    const agent = await agentWithSecret(idp, org.token);
    const res = await tokenRequest(agent.clientId, agent.clientSecret, {}, await make(await proofKey()));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_dpop_proof');
  });

  it('takes htu from PUBLIC_URL, not from the Host a request names', async () => {
    const agent = await agentWithSecret(idp, org.token);
    const { request } = await import('node:http');
    const send = (dpop: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const headers = {
          host: 'other.example',
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basicAuthHeader(agent.clientId, agent.clientSecret),
          dpop,
        };
        const req = request(`${idp.url}/token`, { method: 'POST', headers }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end('grant_type=client_credentials');
      });
    const key = await proofKey();
    const forged = await send(await proof(key, 'POST', 'http://other.example/token'));
    expect(forged.status).toBe(400);
    expect(JSON.parse(forged.body).error).toBe('invalid_dpop_proof');
    expect((await send(await proof(key, 'POST', `${idp.url}/token`))).status).toBe(200);
  });

  it('refuses a proof used twice with 400 invalid_dpop_proof', async () => {
    const agent = await agentWithSecret(idp, org.token);
    const dpop = await proof(await proofKey(), 'POST', `${idp.url}/token`);
    expect((await tokenRequest(agent.clientId, agent.clientSecret, {}, dpop)).status).toBe(200);
    const replay = await tokenRequest(agent.clientId, agent.clientSecret, {}, dpop);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_dpop_proof');
  });

  it('is required for an agent with requireDpop', async () => {
    const agent = await agentWithSecret(idp, org.token, { requireDpop: true });
    expect(agent.agent.requireDpop).toBe(true);
    const without = await tokenRequest(agent.clientId, agent.clientSecret, {});
    expect(without.status).toBe(400);
    expect(without.body.error_description).toMatch(/DPoP proof/);
    const denied = await api(idp.url, org.token).get(`/api/v1/audit?agentId=${agent.clientId}&action=token.denied`);
    expect(denied.body.data).toHaveLength(1);
    const withProof = await tokenRequest(agent.clientId, agent.clientSecret, {}, await proof(await proofKey(), 'POST', `${idp.url}/token`));
    expect(withProof.status).toBe(200);
    expect(withProof.body.token_type).toBe('DPoP');
    // And it can be turned off.
    expect((await api(idp.url, org.token).patch(`/api/v1/agents/${agent.clientId}`, { body: { requireDpop: false } })).body.requireDpop).toBe(false);
    expect((await tokenRequest(agent.clientId, agent.clientSecret, {})).status).toBe(200);
  });
});

describe('/api/v1 as a DPoP resource server', () => {
  const url = () => `${idp.url}/api/v1/agents`;

  it('accepts a bound token with a proof of this request, and an unbound token as Bearer', async () => {
    const key = await proofKey();
    const { token } = await boundManagementToken(key);
    const res = await call(idp.url, 'GET', '/api/v1/agents?limit=1', {
      headers: { authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', url(), { token }) },
    });
    expect(res.status).toBe(200);
    expect((await api(idp.url, org.token).get('/api/v1/agents?limit=1')).status).toBe(200);
  });

  it.each<[string, (key: ProofKey, token: string) => Promise<Record<string, string>>, string]>([
    ['the bound token as Bearer', async (_k, t) => ({ authorization: `Bearer ${t}` }), 'invalid_token'],
    ['no proof', async (_k, t) => ({ authorization: `DPoP ${t}` }), 'invalid_dpop_proof'],
    ['a proof without ath', async (k, t) => ({ authorization: `DPoP ${t}`, dpop: await proof(k, 'GET', url()) }), 'invalid_dpop_proof'],
    [
      'a proof for another token',
      async (k, t) => ({ authorization: `DPoP ${t}`, dpop: await proof(k, 'GET', url(), { token: `${t}x` }) }),
      'invalid_dpop_proof',
    ],
    [
      'a proof for another URL',
      async (k, t) => ({ authorization: `DPoP ${t}`, dpop: await proof(k, 'GET', `${idp.url}/api/v1/keys`, { token: t }) }),
      'invalid_dpop_proof',
    ],
    ['a proof for another method', async (k, t) => ({ authorization: `DPoP ${t}`, dpop: await proof(k, 'POST', url(), { token: t }) }), 'invalid_dpop_proof'],
    [
      'a stale proof',
      async (k, t) => ({ authorization: `DPoP ${t}`, dpop: await proof(k, 'GET', url(), { token: t, iat: Math.floor(Date.now() / 1000) - 900 }) }),
      'invalid_dpop_proof',
    ],
    [
      'a proof by another key',
      async (_k, t) => ({ authorization: `DPoP ${t}`, dpop: await proof(await proofKey(), 'GET', url(), { token: t }) }),
      'invalid_dpop_proof',
    ],
  ])('refuses %s with 401 and a DPoP challenge', async (_what, headers, error) => {
    const key = await proofKey();
    const { token } = await boundManagementToken(key);
    const res = await call(idp.url, 'GET', '/api/v1/agents', { headers: await headers(key, token) });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(new RegExp(`^DPoP error="${error}", algs="[A-Za-z0-9 ]+"$`));
  });

  it('refuses a replayed proof, and an unbound token presented as DPoP', async () => {
    const key = await proofKey();
    const { token } = await boundManagementToken(key);
    const headers = { authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', url(), { token }) };
    expect((await call(idp.url, 'GET', '/api/v1/agents', { headers })).status).toBe(200);
    const replay = await call(idp.url, 'GET', '/api/v1/agents', { headers });
    expect(replay.status).toBe(401);
    expect(replay.body.detail).toMatch(/already used/);
    const unbound = await call(idp.url, 'GET', '/api/v1/agents', {
      headers: { authorization: `DPoP ${org.token}`, dpop: await proof(key, 'GET', url(), { token: org.token }) },
    });
    expect(unbound.status).toBe(401);
    expect(unbound.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/);
  });

  it('/mcp refuses a bound token as Bearer, naming its metadata in a DPoP challenge', async () => {
    const key = await proofKey();
    const agent = await agentWithSecret(idp, org.token, { scopes: ['agents:read'] });
    const res = await tokenRequest(agent.clientId, agent.clientSecret, { resource: `${idp.url}/mcp` }, await proof(key, 'POST', `${idp.url}/token`));
    const mcp = await fetch(`${idp.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${res.body.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(mcp.status).toBe(401);
    expect(mcp.headers.get('www-authenticate')).toMatch(/^DPoP algs="[^"]+", error="invalid_token", resource_metadata="http/);
  });
});

describe('an unmodified openid-client', () => {
  it('gets a DPoP-bound token and calls /api/v1 with it', async () => {
    const agent = await agentWithSecret(idp, org.token, { scopes: ['agents:read'] });
    const config = await oidc.discovery(new URL(idp.url), agent.clientId, undefined, oidc.ClientSecretBasic(agent.clientSecret), {
      execute: [oidc.allowInsecureRequests],
    });
    expect(config.serverMetadata().dpop_signing_alg_values_supported).toContain('ES256');
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    const tokens = await oidc.clientCredentialsGrant(config, { resource: `${idp.url}/api/v1` }, { DPoP });
    expect(tokens.token_type).toBe('dpop');
    const res = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${idp.url}/api/v1/agents?limit=1`), 'GET', undefined, undefined, {
      DPoP,
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: unknown[] }).data).toHaveLength(1);
  });
});

describeOnPostgres('two instances', 'a second instance needs its own connections to one PostgreSQL database', () => {
  it('refuse a proof used on the other one, at /token and at /api/v1', async () => {
    const replica = await startTestIdp({ replicaOf: idp });
    try {
      const agent = await agentWithSecret(idp, org.token, { scopes: ['agents:read'] });
      const key = await proofKey();
      const dpop = await proof(key, 'POST', `${idp.url}/token`);
      const first = await tokenRequest(agent.clientId, agent.clientSecret, { resource: `${idp.url}/api/v1` }, dpop);
      expect(first.status).toBe(200);
      expect((await tokenRequest(agent.clientId, agent.clientSecret, {}, dpop, replica)).body.error).toBe('invalid_dpop_proof');
      const token = first.body.access_token;
      const headers = { authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', `${idp.url}/api/v1/agents`, { token }) };
      expect((await call(idp.url, 'GET', '/api/v1/agents', { headers })).status).toBe(200);
      expect((await call(replica.url, 'GET', '/api/v1/agents', { headers })).status).toBe(401);
    } finally {
      await replica.close();
    }
  });
});
