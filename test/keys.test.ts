import { basicAuthHeader } from '../src/http/basic-auth.ts';
import { DAY_MS } from '../src/lib/time.ts';
import pg from 'pg';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, importSPKI } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { agentWithSecret, createOrg, operatorToken, requestToken } from './factories.ts';
import { eventually } from './helpers/eventually.ts';
import { itOnPostgres } from './helpers/postgres-only.ts';
import { LISTENER_APPLICATION_NAME } from '../src/db/notify.ts';
import { expectJwksAsProviderServes } from './helpers/provider-jwks.ts';

let t: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;
let operator: ReturnType<typeof api>;

// Each test on an instance and database of its own: the key set is the state under test, and
// no test may depend on which rotations and revocations ran before it.
beforeEach(async () => {
  t = await startTestIdp();
  org = await createOrg(t);
  operator = api(t.url, await operatorToken(t));
});
afterEach(() => t.close());

/**
 * After the clock was driven days ahead, the scheduler has removed retired keys whose tokens
 * had expired by then, including the keys that signed this file's management tokens: take new ones.
 */
async function renewTokens() {
  operator = api(t.url, await operatorToken(t));
  org.token = (await requestToken(t, org.admin.clientId, org.admin.clientSecret, { resource: `${t.url}/api/v1` })).body.access_token;
}

async function jwks(base = t.url) {
  return (await call(base, 'GET', '/.well-known/jwks.json')).body as { keys: { kid: string; alg: string }[] };
}

async function verifyAgainstJwks(token: string, base = t.url) {
  return jwtVerify(token, createLocalJWKSet(await jwks(base)), { issuer: t.url, typ: 'at+jwt' });
}

async function freshAgent() {
  return agentWithSecret(t, org.token, { audiences: ['https://api.example'] });
}

const introspect = async (token: string, a: { clientId: string; clientSecret: string }, base = t.url) =>
  (
    await call(base, 'POST', '/token/introspect', {
      raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams({ token }).toString() },
      headers: { authorization: basicAuthHeader(a.clientId, a.clientSecret) },
    })
  ).body;

describe('the key API', () => {
  it('lists keys with public halves only; shows the active one; serves a public key without auth', async () => {
    const list = await operator.get('/api/v1/keys');
    expect(list.status).toBe(200);
    expect(list.body.data.map((k: { status: string }) => k.status).sort()).toEqual(['active', 'next']);
    expect(list.text).not.toMatch(/"d"|"p"|"q"|private/i);
    const active = await operator.get('/api/v1/keys/active');
    expect(active.body).toMatchObject({ status: 'active', alg: 'RS256' });
    expect(active.body.activatedAt).not.toBeNull();

    const pub = await call(t.url, 'GET', `/api/v1/keys/public/${active.body.kid}`);
    expect(pub.status).toBe(200);
    expect(pub.body.publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(pub.body.jwk).toEqual(active.body.publicJwk);
    // The PEM verifies the service's tokens.
    const a = await freshAgent();
    const token = (await requestToken(t, a.clientId, a.clientSecret)).body.access_token;
    await jwtVerify(token, await importSPKI(pub.body.publicKey, 'RS256'), { issuer: t.url });
    expect((await call(t.url, 'GET', '/api/v1/keys/public/unknown-kid')).status).toBe(404);
  });

  it('creates next keys of every allowed algorithm and refuses the others', async () => {
    for (const alg of ['PS256', 'ES256', 'EdDSA', 'RS256']) {
      const res = await operator.post('/api/v1/keys', { body: { alg } });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ alg, status: 'next', activatedAt: null });
      expect((await jwks()).keys.map((k) => k.kid)).toContain(res.body.kid);
    }
    for (const alg of ['none', 'HS256', 'RS512', 42]) {
      const res = await operator.post('/api/v1/keys', { body: { alg } });
      expect(res.status).toBe(400);
      expect(res.body.errors[0].field).toBe('/alg');
    }
  });

  it('is for operators only', async () => {
    const admin = api(t.url, org.token);
    for (const res of [
      await admin.get('/api/v1/keys'),
      await admin.get('/api/v1/keys/active'),
      await admin.post('/api/v1/keys', { body: {} }),
      await admin.post('/api/v1/keys/rotate'),
    ]) {
      expect(res.status).toBe(403);
    }
    expect((await api(t.url).get('/api/v1/keys')).status).toBe(401);
  });
});

describe('rotation', () => {
  it('new tokens carry the new kid, which was published before it signed; old tokens still verify and introspect active', async () => {
    const a = await freshAgent();
    const before = (await requestToken(t, a.clientId, a.clientSecret)).body.access_token;
    const published = (await jwks()).keys.map((k) => k.kid);

    const res = await operator.post('/api/v1/keys/rotate');
    expect(res.status).toBe(200);
    const { active, next } = res.body;
    expect(active.status).toBe('active');
    expect(next.status).toBe('next');
    expect(published).toContain(active.kid);
    expect(active.kid).not.toBe(decodeProtectedHeader(before).kid);

    const after = (await requestToken(t, a.clientId, a.clientSecret)).body.access_token;
    expect(decodeProtectedHeader(after)).toMatchObject({ kid: active.kid, alg: active.alg });
    await verifyAgainstJwks(after);
    await verifyAgainstJwks(before);
    expect((await introspect(before, a)).active).toBe(true);
    expect((await introspect(after, a)).active).toBe(true);
    const kids = (await jwks()).keys.map((k) => k.kid);
    expect(kids).toEqual(expect.arrayContaining([decodeProtectedHeader(before).kid!, active.kid, next.kid]));
    // The JWKS answered from fixed bytes follows the key set as oidc-provider's own route does.
    await expectJwksAsProviderServes(t);
  });

  it('signs with ES256 and EdDSA keys that any library verifies against the JWKS', async () => {
    const a = await freshAgent();
    for (const alg of ['ES256', 'EdDSA', 'RS256']) {
      // Drop the other next keys so that the one made here is promoted.
      for (const key of (await operator.get('/api/v1/keys')).body.data) {
        if (key.status === 'next') await operator.post(`/api/v1/keys/${key.kid}/revoke`);
      }
      for (const key of (await operator.get('/api/v1/keys')).body.data) {
        if (key.status === 'next') await operator.post(`/api/v1/keys/${key.kid}/revoke`);
      }
      const created = await operator.post('/api/v1/keys', { body: { alg } });
      const nexts = (await operator.get('/api/v1/keys')).body.data.filter((k: { status: string }) => k.status === 'next');
      expect(nexts.map((k: { kid: string }) => k.kid)).toContain(created.body.kid);
      for (const key of nexts) if (key.kid !== created.body.kid) await operator.post(`/api/v1/keys/${key.kid}/revoke`);
      const rotated = await operator.post('/api/v1/keys/rotate');
      expect(rotated.body.active.kid).toBe(created.body.kid);
      const token = (await requestToken(t, a.clientId, a.clientSecret)).body.access_token;
      expect(decodeProtectedHeader(token)).toMatchObject({ alg, kid: created.body.kid, typ: 'at+jwt' });
      await verifyAgainstJwks(token);
      expect((await introspect(token, a)).active).toBe(true);
    }
  });

  it('the scheduler rotates once the active key is KEY_ROTATION_DAYS old and the next key has been published for the JWKS lifetime', async () => {
    const scheduler = t.idp.scheduler;
    const active = (await operator.get('/api/v1/keys/active')).body;
    const nextKid = (await operator.get('/api/v1/keys')).body.data.find((k: { status: string }) => k.status === 'next').kid;
    const dueAt = new Date(new Date(active.activatedAt).getTime() + t.config.keyRotationDays * DAY_MS + 1000);

    // Not yet due: nothing happens.
    expect((await scheduler.run(new Date(dueAt.getTime() - 60_000)))?.rotated).toBeUndefined();
    // A next key published only moments ago is not promoted yet, even when the rotation is due.
    await t.idp.database.dataSource.query(`UPDATE signing_keys SET created_at = $1 WHERE kid = $2`, [new Date(dueAt.getTime() - 60_000), nextKid]);
    expect((await scheduler.run(dueAt))?.rotated).toBeUndefined();
    // Published for longer than the JWKS cache lifetime: promoted.
    const result = await scheduler.run(new Date(dueAt.getTime() + 600_000));
    expect(result?.rotated).toMatchObject({ retired: active.kid, active: nextKid });
    await renewTokens();
    expect((await operator.get('/api/v1/keys/active')).body.kid).toBe(nextKid);
  });

  it('a retired key leaves the JWKS once its last token has expired, not before', async () => {
    const rotated = await operator.post('/api/v1/keys/rotate');
    const keys = (await operator.get('/api/v1/keys')).body.data;
    const retired = keys.filter((k: { status: string }) => k.status === 'retired');
    expect(retired.length).toBeGreaterThan(0);
    const newest = retired.reduce((a: { retiredAt: string }, b: { retiredAt: string }) => (a.retiredAt > b.retiredAt ? a : b));
    // Agents of this file keep the default TTL (3600 s), so tokens signed just before live an hour.
    const retiredAt = new Date(newest.retiredAt).getTime();
    expect((await t.idp.scheduler.run(new Date(retiredAt + 3_600_000)))?.removed).not.toContain(newest.kid);
    expect((await jwks()).keys.map((k) => k.kid)).toContain(newest.kid);
    const result = await t.idp.scheduler.run(new Date(retiredAt + 3_600_000 + 61_000));
    expect(result?.removed).toContain(newest.kid);
    expect((await jwks()).keys.map((k) => k.kid)).not.toContain(newest.kid);
    expect((await jwks()).keys.map((k) => k.kid)).toContain(rotated.body.active.kid);
    await renewTokens();
  });
});

describe('revocation', () => {
  it('unpublishes at once, its tokens go inactive, signing moves to the next key, and only then can it be deleted', async () => {
    const a = await freshAgent();
    const active = (await operator.get('/api/v1/keys/active')).body;
    const token = (await requestToken(t, a.clientId, a.clientSecret)).body.access_token;
    expect(decodeProtectedHeader(token).kid).toBe(active.kid);

    const del = await operator.delete(`/api/v1/keys/${active.kid}`);
    expect(del.status).toBe(400);
    expect(del.body.code).toBe('key_not_revoked');

    const res = await operator.post(`/api/v1/keys/${active.kid}/revoke`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ kid: active.kid, status: 'revoked' });
    expect((await jwks()).keys.map((k) => k.kid)).not.toContain(active.kid);
    expect(await introspect(token, a)).toEqual({ active: false });
    expect((await call(t.url, 'GET', `/api/v1/keys/public/${active.kid}`)).status).toBe(404);

    // The management tokens of this file were signed by that key too: they stop working.
    expect((await operator.get('/api/v1/keys')).status).toBe(401);
    await renewTokens();

    const newToken = (await requestToken(t, a.clientId, a.clientSecret)).body.access_token;
    expect(decodeProtectedHeader(newToken).kid).not.toBe(active.kid);
    expect((await introspect(newToken, a)).active).toBe(true);
    const keys = (await operator.get('/api/v1/keys')).body.data;
    expect(keys.filter((k: { status: string }) => k.status === 'active')).toHaveLength(1);
    expect(keys.filter((k: { status: string }) => k.status === 'next').length).toBeGreaterThanOrEqual(1);

    expect((await operator.post(`/api/v1/keys/${active.kid}/revoke`)).status).toBe(409);
    expect((await operator.delete(`/api/v1/keys/${active.kid}`)).status).toBe(204);
    expect((await operator.delete(`/api/v1/keys/${active.kid}`)).status).toBe(404);
  });
});

describe('two instances on one database', () => {
  let replica: TestIdp;
  beforeEach(async () => {
    replica = await startTestIdp({ replicaOf: t });
  });
  afterEach(() => replica.close());

  it('rotate on one: the other signs with the new key and publishes the new next key; a rolling load sees no failure', async () => {
    const a = await freshAgent();
    let stop = false;
    const failures: unknown[] = [];
    let sent = 0;
    const load = (async () => {
      while (!stop) {
        const base = sent % 2 === 0 ? t.url : replica.url;
        sent++;
        const res = await requestToken({ url: base }, a.clientId, a.clientSecret);
        if (res.status !== 200) failures.push(res.body);
        else await verifyAgainstJwks(res.body.access_token, base).catch((err) => failures.push(String(err)));
      }
    })();

    // Some requests before the rotation, and (below) a fixed number after it: counts, not times.
    await eventually(() => sent >= 5);
    const sentBefore = sent;
    const rotated = await operator.post('/api/v1/keys/rotate');
    const { active, next } = rotated.body;
    // The replica reloads on the NOTIFY (how fast: bench/, not a test on a loaded machine).
    await eventually(async () => {
      const token = (await requestToken({ url: replica.url }, a.clientId, a.clientSecret)).body.access_token;
      const kids = (await jwks(replica.url)).keys.map((k) => k.kid);
      return decodeProtectedHeader(token).kid === active.kid && kids.includes(next.kid);
    });
    const afterRotation = sent + 10;
    await eventually(() => sent >= afterRotation);
    stop = true;
    await load;
    expect(sent - sentBefore).toBeGreaterThanOrEqual(10);
    expect(failures).toEqual([]);
  });

  itOnPostgres(
    'keeps in step when its LISTEN connection is cut: polling covers until it is back',
    'the embedded database has no LISTEN connection to cut',
    async () => {
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      try {
        const dbName = new URL(t.db.url).pathname.slice(1);
        const cut = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`, [
          dbName,
          LISTENER_APPLICATION_NAME,
        ]);
        expect(cut.rowCount).toBe(2);
        const rotated = (await operator.post('/api/v1/keys/rotate')).body;
        const a = await freshAgent();
        // Polling (every second while the connection is down) brings the replica the new key.
        await eventually(async () => {
          const token = (await requestToken({ url: replica.url }, a.clientId, a.clientSecret)).body.access_token;
          return decodeProtectedHeader(token).kid === rotated.active.kid;
        });
        expect(replica.logs.some((l) => l.includes('lost the LISTEN connection'))).toBe(true);
      } finally {
        await admin.end();
      }
    },
  );

  it("a key revoked through one is refused by the other's introspection at once", async () => {
    const a = await freshAgent();
    const token = (await requestToken({ url: replica.url }, a.clientId, a.clientSecret)).body.access_token;
    expect((await introspect(token, a, replica.url)).active).toBe(true);
    expect((await operator.post(`/api/v1/keys/${decodeProtectedHeader(token).kid}/revoke`)).status).toBe(200);
    expect(await introspect(token, a, replica.url)).toEqual({ active: false });
    await renewTokens();
  });
});
