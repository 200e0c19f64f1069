import pg from 'pg';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { agentWithSecret, createOrg, requestToken } from './factories.ts';
import { describeOnPostgres } from './helpers/postgres-only.ts';

// A real outage on a real PostgreSQL: the database refuses connections and the ones in the
// pool are cut. Requests answer 503 (never a stack, never a token); when the database is back
// the service recovers by itself. Embedded mode has no server to cut, so this runs on
// PostgreSQL (DATABASE_URL) only.
describeOnPostgres('a database outage', 'there is no database server to refuse connections', () => {
  let t: TestIdp;
  let admin: pg.Client;
  let dbName: string;

  beforeAll(async () => {
    t = await startTestIdp();
    dbName = new URL(t.db.url).pathname.slice(1);
    admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`).catch(() => {});
    await admin.end();
    await t.close();
  });

  async function cut() {
    await admin.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]);
  }

  it('answers 503 while the database is away and recovers by itself', async () => {
    const org = await createOrg(t);
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);

    await cut();
    const token = await requestToken(t, a.clientId, a.clientSecret);
    expect(token.status).toBe(503);
    expect(token.body).toMatchObject({ error: 'temporarily_unavailable' });
    expect(token.body.access_token).toBeUndefined();
    const list = await api(t.url, org.token).get('/api/v1/agents');
    expect(list.status).toBe(503);
    expect(list.headers.get('retry-after')).toBe('1');
    expect(list.body).toMatchObject({ code: 'service_unavailable', requestId: list.headers.get('x-request-id') });
    expect(list.text).not.toMatch(/ECONNREFUSED|terminat|pg_|at \w+ \(/);
    // Out of the load balancer's rotation, but alive: a restart would not bring the database back.
    const ready = await call(t.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'unavailable', checks: { database: 'failing', signingKeys: 'ok' } });
    expect((await call(t.url, 'GET', '/healthz')).status).toBe(200);

    await admin.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    expect((await api(t.url, org.token).get('/api/v1/agents')).status).toBe(200);
    expect((await call(t.url, 'GET', '/readyz')).body).toMatchObject({ status: 'ready' });
  });
});
