import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import {
  SignJWT,
  base64url,
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importPKCS8,
  type GenerateKeyPairResult,
  type JWK,
} from 'jose';
import { AgentTokenClient, OAuthError, TokenError, createVerifier, expressAuth, koaAuth, type FetchLike } from '../sdk/src/index.ts';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api } from './helpers/api.ts';
import { createAgent, createOrg } from './factories.ts';

// private_key_jwt and DPoP with the SDK, against the real server over real HTTP: the tokens the
// server issues to the SDK's assertions and proofs, and resource servers built on the SDK that
// refuse what RFC 9449 says they must.

const AUDIENCE = 'https://orders.example';

interface KeyCredential {
  credentialId: string;
  kid: string;
  alg: string;
  publicJwk: JWK;
  privateKeyPem?: string;
  privateJwk?: JWK;
}

/** What went to /token: the form of each request, and its DPoP header. */
function recordingFetch() {
  const sent: { url: string; form: URLSearchParams; dpop: string | null }[] = [];
  const fetchImpl: FetchLike = (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith('/token')) sent.push({ url, form: new URLSearchParams(String(init?.body)), dpop: new Headers(init?.headers).get('dpop') });
    return fetch(input, init);
  };
  return { fetch: fetchImpl, sent };
}

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A DPoP proof made by hand (not by the SDK), so that each claim can be got wrong on purpose. */
async function handProof(pair: GenerateKeyPairResult, claims: { htm: string; htu: string; accessToken?: string; iat?: number; jti?: string }): Promise<string> {
  const body: Record<string, string> = { htm: claims.htm, htu: claims.htu, jti: claims.jti ?? crypto.randomUUID() };
  if (claims.accessToken) body.ath = base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(claims.accessToken))));
  return new SignJWT(body)
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(pair.publicKey) })
    .setIssuedAt(claims.iat ?? Math.floor(Date.now() / 1000))
    .sign(pair.privateKey);
}

describe('the SDK with key credentials and DPoP', () => {
  let t: TestIdp;
  let orgToken: string;

  beforeAll(async () => {
    t = await startTestIdp();
    ({ token: orgToken } = await createOrg(t));
  });
  afterAll(() => t.close());

  async function agentWithKey(body: Record<string, unknown> = { alg: 'ES256' }, agentBody: Record<string, unknown> = {}) {
    const agent = await createAgent(t, orgToken, { audiences: [AUDIENCE], scopes: ['orders:read', 'orders:write'], ...agentBody });
    const res = await api(t.url, orgToken).post(`/api/v1/agents/${agent.agentId}/credentials`, { body: { type: 'private_key_jwt', ...body } });
    expect(res.status).toBe(201);
    return { clientId: agent.agentId as string, credential: res.body as KeyCredential };
  }

  describe('private_key_jwt', () => {
    it('gets tokens with the generated PEM: a new assertion per request (iss = sub = client id, aud = issuer, jti, 60 s), kid = the credential kid', async () => {
      const { clientId, credential } = await agentWithKey();
      const wire = recordingFetch();
      const client = new AgentTokenClient({ issuer: t.url, clientId, privateKey: credential.privateKeyPem!, fetch: wire.fetch });
      const first = await client.getToken();
      const second = await client.getToken({ scope: 'orders:read' });
      expect(first.tokenType).toBe('Bearer');
      expect(second.accessToken).not.toBe(first.accessToken);
      const claims = await createVerifier({ issuer: t.url, audience: AUDIENCE }).verify(first.accessToken);
      expect(claims).toMatchObject({ sub: clientId, client_id: clientId, scope: 'orders:read orders:write' });

      expect(wire.sent).toHaveLength(2);
      const assertions = wire.sent.map(({ form }) => {
        expect(form.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
        expect(form.has('client_secret')).toBe(false);
        return form.get('client_assertion')!;
      });
      expect(decodeProtectedHeader(assertions[0])).toEqual({ alg: 'ES256', kid: credential.kid });
      const [a, b] = assertions.map((jwt) => decodeJwt(jwt));
      expect(a).toMatchObject({ iss: clientId, sub: clientId, aud: t.url });
      expect(a.exp! - a.iat!).toBe(60);
      expect(a.jti).not.toBe(b.jti);
    });

    it('takes the private key as a JWK or a CryptoKey too, and finds the algorithm of a PEM by itself (EdDSA, RS256)', async () => {
      const es = await agentWithKey();
      const fromJwk = new AgentTokenClient({ issuer: t.url, clientId: es.clientId, privateKey: es.credential.privateJwk! });
      expect((await fromJwk.getToken()).accessToken).toBeTruthy();
      const cryptoKey = await importPKCS8(es.credential.privateKeyPem!, 'ES256');
      const fromCryptoKey = new AgentTokenClient({ issuer: t.url, clientId: es.clientId, privateKey: cryptoKey });
      expect((await fromCryptoKey.getToken()).accessToken).toBeTruthy();

      for (const alg of ['EdDSA', 'RS256']) {
        const { clientId, credential } = await agentWithKey({ alg });
        expect(credential.alg).toBe(alg);
        const wire = recordingFetch();
        await new AgentTokenClient({ issuer: t.url, clientId, privateKey: credential.privateKeyPem!, fetch: wire.fetch }).getToken();
        expect(decodeProtectedHeader(wire.sent[0].form.get('client_assertion')!)).toEqual({ alg, kid: credential.kid });
      }
    });

    it("signs with the agent's own key when the credential holds only its public JWK (kid = its RFC 7638 thumbprint)", async () => {
      const own = await generateKeyPair('ES256', { extractable: true });
      const publicJwk = await exportJWK(own.publicKey);
      const { clientId, credential } = await agentWithKey({ publicJwk });
      expect(credential).not.toHaveProperty('privateKeyPem');
      expect(credential.kid).toBe(await calculateJwkThumbprint(publicJwk));
      const wire = recordingFetch();
      const client = new AgentTokenClient({ issuer: t.url, clientId, privateKey: await exportJWK(own.privateKey), fetch: wire.fetch });
      await client.getToken();
      expect(decodeProtectedHeader(wire.sent[0].form.get('client_assertion')!).kid).toBe(credential.kid);
    });

    it('is refused with invalid_client once the key credential is revoked, or with a key the agent does not hold', async () => {
      const { clientId, credential } = await agentWithKey();
      const stranger = await generateKeyPair('ES256');
      const wrong = await rejection(new AgentTokenClient({ issuer: t.url, clientId, privateKey: stranger.privateKey }).getToken());
      expect(wrong).toBeInstanceOf(OAuthError);
      expect(wrong).toMatchObject({ code: 'invalid_client', status: 401 });

      const client = new AgentTokenClient({ issuer: t.url, clientId, privateKey: credential.privateKeyPem! });
      await client.getToken();
      expect((await api(t.url, orgToken).delete(`/api/v1/agents/${clientId}/credentials/${credential.credentialId}`)).status).toBe(204);
      expect(await rejection(client.getToken({ scope: 'orders:read' }))).toMatchObject({ code: 'invalid_client', status: 401 });
    });

    it('wants exactly one of clientSecret and privateKey', async () => {
      const { clientId, credential } = await agentWithKey();
      expect(() => new AgentTokenClient({ issuer: t.url, clientId })).toThrow(/exactly one of clientSecret and privateKey/);
      expect(() => new AgentTokenClient({ issuer: t.url, clientId, clientSecret: 'aidp_cs_x', privateKey: credential.privateKeyPem! })).toThrow(/exactly one/);
      const notAKey = await rejection(new AgentTokenClient({ issuer: t.url, clientId, privateKey: 'not a pem' }).getToken());
      expect(notAKey).toBeInstanceOf(TypeError);
      expect(String(notAKey.message)).not.toContain('not a pem');
    });
  });

  describe('DPoP-bound tokens', () => {
    it('dpop: true binds the token to a key made in memory: token_type DPoP, cnf.jkt its thumbprint, one proof per request', async () => {
      const { clientId, credential } = await agentWithKey();
      const wire = recordingFetch();
      const client = new AgentTokenClient({ issuer: t.url, clientId, privateKey: credential.privateKeyPem!, dpop: true, fetch: wire.fetch });
      const token = await client.getToken();
      expect(token.tokenType).toBe('DPoP');
      const jkt = await client.dpopThumbprint();
      expect(jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(decodeJwt(token.accessToken).cnf).toEqual({ jkt });

      const proof = wire.sent[0].dpop!;
      const header = decodeProtectedHeader(proof);
      expect(header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256' } });
      expect(header.jwk).not.toHaveProperty('d');
      expect(await calculateJwkThumbprint(header.jwk as JWK)).toBe(jkt);
      expect(decodeJwt(proof)).toMatchObject({ htm: 'POST', htu: `${t.url}/token`, jti: expect.any(String), iat: expect.any(Number) });
      expect(decodeJwt(proof)).not.toHaveProperty('ath');

      await client.getToken({ scope: 'orders:read' });
      expect(decodeJwt(wire.sent[1].dpop!).jti).not.toBe(decodeJwt(proof).jti);
    });

    it('binds to a key pair given by the caller; a client secret works with DPoP as well', async () => {
      const pair = await generateKeyPair('ES256');
      const agent = await createAgent(t, orgToken, { audiences: [AUDIENCE], scopes: ['orders:read'] });
      const secret = await api(t.url, orgToken).post(`/api/v1/agents/${agent.agentId}/credentials`, { body: {} });
      const client = new AgentTokenClient({ issuer: t.url, clientId: agent.agentId, clientSecret: secret.body.clientSecret, dpop: pair });
      const token = await client.getToken();
      expect(token.tokenType).toBe('DPoP');
      expect(decodeJwt(token.accessToken).cnf).toEqual({ jkt: await calculateJwkThumbprint(await exportJWK(pair.publicKey)) });
    });

    it('an agent with requireDpop gets no token without a proof, and one with', async () => {
      const { clientId, credential } = await agentWithKey({ alg: 'ES256' }, { requireDpop: true });
      const plain = new AgentTokenClient({ issuer: t.url, clientId, privateKey: credential.privateKeyPem! });
      expect(await rejection(plain.getToken())).toMatchObject({ status: 400 });
      const bound = new AgentTokenClient({ issuer: t.url, clientId, privateKey: credential.privateKeyPem!, dpop: true });
      expect((await bound.getToken()).tokenType).toBe('DPoP');
    });
  });

  describe('resource servers checking DPoP-bound tokens', () => {
    const servers: Server[] = [];
    const urls: Record<'koa' | 'express', string> = { koa: '', express: '' };
    let pair: GenerateKeyPairResult;
    let client: AgentTokenClient;
    let unbound: AgentTokenClient;
    let owner: Awaited<ReturnType<typeof agentWithKey>>;

    beforeAll(async () => {
      const verifier = createVerifier({ issuer: t.url, audience: AUDIENCE });
      const app = new Koa();
      app.use(koaAuth(verifier));
      app.use((ctx) => {
        ctx.body = { sub: ctx.state.auth.sub, jkt: ctx.state.auth.cnf?.jkt ?? null };
      });
      servers.push(createServer(app.callback()));
      urls.koa = await listen(servers[0]);
      const guard = expressAuth(verifier);
      servers.push(
        createServer((req, res) =>
          guard(req, res, (err) => {
            res.statusCode = err ? 500 : 200;
            const auth = (req as { auth?: { sub: string; cnf?: { jkt?: string } } }).auth;
            res.end(err ? 'error' : JSON.stringify({ sub: auth?.sub, jkt: auth?.cnf?.jkt ?? null }));
          }),
        ),
      );
      urls.express = await listen(servers[1]);

      owner = await agentWithKey();
      const { clientId, credential } = owner;
      pair = await generateKeyPair('ES256');
      client = new AgentTokenClient({ issuer: t.url, clientId, privateKey: credential.privateKeyPem!, dpop: pair });
      unbound = new AgentTokenClient({ issuer: t.url, clientId, privateKey: credential.privateKeyPem! });
    });
    afterAll(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))));

    const kinds = ['koa', 'express'] as const;

    it.each(kinds)('%s: accepts the bound token with its proof (client.fetch, authorizationHeaders); an unbound one as Bearer', async (kind) => {
      const url = `${urls[kind]}/orders?page=2`;
      const res = await client.fetch(url);
      expect(res.status).toBe(200);
      const jkt = await client.dpopThumbprint();
      expect(await res.json()).toEqual({ sub: expect.any(String), jkt });

      const headers = await client.authorizationHeaders('POST', url);
      expect(headers.authorization).toMatch(/^DPoP /);
      expect(decodeJwt(headers.dpop)).toMatchObject({ htm: 'POST', htu: `${urls[kind]}/orders`, ath: expect.any(String) });
      expect((await fetch(url, { method: 'POST', headers })).status).toBe(200);

      const plain = await unbound.authorizationHeaders('GET', url);
      expect(plain).toEqual({ authorization: expect.stringMatching(/^Bearer /) });
      const asBearer = await fetch(url, { headers: plain });
      expect(asBearer.status).toBe(200);
      expect(await asBearer.json()).toMatchObject({ jkt: null });
    });

    it.each(kinds)('%s: refuses the bound token as Bearer, without a proof, with a replayed one, and an unbound token as DPoP', async (kind) => {
      const url = `${urls[kind]}/orders`;
      const { accessToken } = await client.getToken();

      const asBearer = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` } });
      expect(asBearer.status).toBe(401);
      expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token", error_description="[^"]*DPoP-bound/);

      const noProof = await fetch(url, { headers: { authorization: `DPoP ${accessToken}` } });
      expect(noProof.status).toBe(401);
      expect(noProof.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof", error_description="no DPoP proof"/);

      const headers = await client.authorizationHeaders('GET', url);
      expect((await fetch(url, { headers })).status).toBe(200);
      const replayed = await fetch(url, { headers });
      expect(replayed.status).toBe(401);
      expect(replayed.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof", error_description="[^"]*replayed/);
      expect(await replayed.json()).toMatchObject({ error: 'invalid_dpop_proof' });

      const plainToken = (await unbound.getToken()).accessToken;
      const unboundAsDpop = await fetch(url, { headers: { authorization: `DPoP ${plainToken}`, dpop: await handProof(pair, { htm: 'GET', htu: url }) } });
      expect(unboundAsDpop.status).toBe(401);
      expect(unboundAsDpop.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token", error_description="[^"]*not DPoP-bound/);
    });

    it.each(kinds)('%s: refuses a proof with a wrong ath, for another URL or method, by another key, stale, or two proofs', async (kind) => {
      const url = `${urls[kind]}/orders`;
      const { accessToken } = await client.getToken();
      const other = (await client.getToken({ scope: 'orders:read' })).accessToken;
      const send = (dpop: string | string[]) => {
        const headers = new Headers({ authorization: `DPoP ${accessToken}` });
        for (const value of [dpop].flat()) headers.append('dpop', value);
        return fetch(url, { headers });
      };
      const challenge = async (res: Response) => {
        expect(res.status).toBe(401);
        return res.headers.get('www-authenticate');
      };

      // The hand-made proof passes when nothing is wrong with it: the refusals below are each for one claim.
      expect((await send(await handProof(pair, { htm: 'GET', htu: url, accessToken }))).status).toBe(200);

      expect(await challenge(await send(await handProof(pair, { htm: 'GET', htu: url, accessToken: other })))).toMatch(
        /^DPoP error="invalid_dpop_proof", error_description="[^"]*ath/,
      );
      expect(await challenge(await send(await handProof(pair, { htm: 'GET', htu: `${urls[kind]}/payments`, accessToken })))).toMatch(
        /^DPoP error="invalid_dpop_proof", error_description="the DPoP proof is for http:\/\/127\.0\.0\.1:\d+\/payments, not/,
      );
      expect(await challenge(await send(await handProof(pair, { htm: 'DELETE', htu: url, accessToken })))).toMatch(
        /^DPoP error="invalid_dpop_proof", error_description="the DPoP proof is for DELETE, not GET"/,
      );
      const stranger = await generateKeyPair('ES256');
      expect(await challenge(await send(await handProof(stranger, { htm: 'GET', htu: url, accessToken })))).toMatch(
        /^DPoP error="invalid_token", error_description="[^"]*another key/,
      );
      const stale = await handProof(pair, { htm: 'GET', htu: url, accessToken, iat: Math.floor(Date.now() / 1000) - 120 });
      expect(await challenge(await send(stale))).toMatch(/^DPoP error="invalid_dpop_proof", error_description="[^"]*iat/);
      const good = () => handProof(pair, { htm: 'GET', htu: url, accessToken });
      expect(await challenge(await send([await good(), await good()]))).toMatch(/^DPoP error="invalid_dpop_proof", error_description="more than one/);
      expect(await challenge(await send('not-a-jwt'))).toMatch(/^DPoP error="invalid_dpop_proof"/);
    });

    it('strict mode introspects with a private key; a revoked bound token is refused even with a good proof', async () => {
      const rs = await agentWithKey({ alg: 'ES256' }, { scopes: ['tokens:introspect'], audiences: [] });
      const wire = recordingFetch();
      const strict = createVerifier({
        issuer: t.url,
        audience: AUDIENCE,
        introspection: { clientId: rs.clientId, privateKey: rs.credential.privateKeyPem!, cacheSeconds: 0 },
        fetch: async (input, init) => {
          const url = String(input instanceof Request ? input.url : input);
          if (url.endsWith('/token/introspect')) wire.sent.push({ url, form: new URLSearchParams(String(init?.body)), dpop: null });
          return fetch(input, init);
        },
      });
      const { accessToken } = await client.getToken({ scope: 'orders:write' });
      const url = 'https://orders.example/orders';
      const request = async () => ({
        method: 'GET',
        url,
        headers: { authorization: `DPoP ${accessToken}`, dpop: await handProof(pair, { htm: 'GET', htu: url, accessToken }) },
      });
      expect((await strict.verify(accessToken, await request())).cnf).toEqual({ jkt: await client.dpopThumbprint() });
      expect(wire.sent).toHaveLength(1);
      expect(wire.sent[0].form.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      expect(decodeJwt(wire.sent[0].form.get('client_assertion')!)).toMatchObject({ iss: rs.clientId, sub: rs.clientId, aud: t.url });

      // RFC 7009 at /token/revoke, the agent authenticating with its key.
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: owner.credential.kid })
        .setIssuer(owner.clientId)
        .setSubject(owner.clientId)
        .setAudience(t.url)
        .setJti(crypto.randomUUID())
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(await importPKCS8(owner.credential.privateKeyPem!, 'ES256'));
      const revoked = await fetch(`${t.url}/token/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: accessToken,
          client_id: owner.clientId,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
        }).toString(),
      });
      expect(revoked.status).toBe(200);
      expect(await rejection(strict.verify(accessToken, await request()))).toMatchObject({
        code: 'invalid_token',
        message: expect.stringMatching(/not active/),
      });
      expect(wire.sent).toHaveLength(2);
    });

    it("agent-idp's own /api/v1 accepts the SDK's DPoP-bound management token with the SDK's proofs, and refuses it as Bearer", async () => {
      const org = await createOrg(t);
      const admin = new AgentTokenClient({ issuer: t.url, ...org.admin, resource: `${t.url}/api/v1`, dpop: true });
      const res = await admin.fetch(`${t.url}/api/v1/agents?limit=1`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ total: 1 });
      const { accessToken, tokenType } = await admin.getToken();
      expect(tokenType).toBe('DPoP');
      const asBearer = await fetch(`${t.url}/api/v1/agents`, { headers: { authorization: `Bearer ${accessToken}` } });
      expect(asBearer.status).toBe(401);
      expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP /);
    });

    it('AgentTokenClient.fetch answers a use_dpop_nonce challenge (RFC 9449 §9) once, with the nonce in the next proof', async () => {
      const proofs: Record<string, unknown>[] = [];
      const server = createServer((req, res) => {
        const proof = decodeJwt(String(req.headers.dpop));
        proofs.push(proof);
        if (proof.nonce !== 'n-1') {
          res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n-1' });
          return void res.end();
        }
        res.end('ok');
      });
      const base = await listen(server);
      try {
        const res = await client.fetch(`${base}/orders`);
        expect(res.status).toBe(200);
        expect(proofs.map((p) => p.nonce)).toEqual([undefined, 'n-1']);
        // The token was kept: a nonce challenge is not a refusal of the token.
        expect(proofs[0].ath).toBe(proofs[1].ath);
        // Later proofs to that origin carry the nonce from the start.
        await client.fetch(`${base}/orders`);
        expect(proofs.map((p) => p.nonce)).toEqual([undefined, 'n-1', 'n-1']);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('the replay cache is bounded: past replayCacheSize the oldest jti is forgotten (why maxAgeSeconds should stay short)', async () => {
      const verifier = createVerifier({ issuer: t.url, audience: AUDIENCE, dpop: { replayCacheSize: 2 } });
      const { accessToken } = await client.getToken();
      const url = 'https://orders.example/orders';
      const proofs = await Promise.all([1, 2, 3].map(() => handProof(pair, { htm: 'GET', htu: url, accessToken })));
      const verify = (dpop: string) => verifier.verify(accessToken, { method: 'GET', url, headers: { authorization: `DPoP ${accessToken}`, dpop } });
      await verify(proofs[0]);
      await verify(proofs[1]);
      expect(await rejection(verify(proofs[1]))).toMatchObject({ code: 'invalid_dpop_proof', message: expect.stringMatching(/replayed/) });
      await verify(proofs[2]);
      // proofs[0] was the oldest of the two kept: dropped when proofs[2] came.
      await verify(proofs[0]);
      expect(await rejection(verify(proofs[2]))).toMatchObject({ code: 'invalid_dpop_proof' });
    });

    it('checks htu against baseUrl when given, not the Host header', async () => {
      const verifier = createVerifier({ issuer: t.url, audience: AUDIENCE });
      const app = new Koa();
      app.use(koaAuth(verifier, { baseUrl: 'https://orders.example/api/' }));
      app.use((ctx) => (ctx.body = 'ok'));
      const server = createServer(app.callback());
      const base = await listen(server);
      try {
        const { accessToken } = await client.getToken();
        const proofFor = async (htu: string) => handProof(pair, { htm: 'GET', htu, accessToken });
        const get = async (htu: string) => fetch(`${base}/orders`, { headers: { authorization: `DPoP ${accessToken}`, dpop: await proofFor(htu) } });
        expect((await get('https://orders.example/api/orders')).status).toBe(200);
        expect((await get(`${base}/orders`)).status).toBe(401);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('verify: the iat window follows the clock and the tolerance; a bound token without the request is refused', async () => {
      let offset = 0;
      const verifier = createVerifier({ issuer: t.url, audience: AUDIENCE, now: () => Date.now() + offset, dpop: { maxAgeSeconds: 30 } });
      const { accessToken } = await client.getToken();
      const url = 'https://orders.example/orders';
      const request = async () => ({
        method: 'GET',
        url,
        headers: { authorization: `DPoP ${accessToken}`, dpop: await handProof(pair, { htm: 'GET', htu: url, accessToken }) },
      });
      await verifier.verify(accessToken, await request());
      offset = 31_000;
      const late = await rejection(verifier.verify(accessToken, await request()));
      expect(late).toBeInstanceOf(TokenError);
      expect(late).toMatchObject({ code: 'invalid_dpop_proof', dpop: true, message: expect.stringMatching(/iat is more than 30 s/) });
      offset = -29_000;
      await verifier.verify(accessToken, await request());

      expect(await rejection(verifier.verify(accessToken))).toMatchObject({ code: 'invalid_token', dpop: true });
    });
  });
});
