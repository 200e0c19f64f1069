import { createLogger } from '../src/lib/logger.ts';
import { KeyRing } from '../src/keys/key-ring.ts';
import { ReadinessCheck } from '../src/health/readiness.ts';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { call } from './helpers/api.ts';
import { agentWithSecret, createOrg, requestToken } from './factories.ts';

// /healthz and /readyz over real HTTP: what a load balancer and an orchestrator see, including
// during a shutdown. (A database that is away: test/outage.test.ts, on PostgreSQL.)

let t: TestIdp;
beforeAll(async () => {
  t = await startTestIdp();
});
afterAll(() => t.close());

describe('GET /healthz', () => {
  it('answers 200 without a token, never cached', async () => {
    const res = await call(t.url, 'GET', '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });
});

describe('GET /readyz', () => {
  it('answers 200 with every check ok, without a token, never cached', async () => {
    const res = await call(t.url, 'GET', '/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', checks: { database: 'ok', signingKeys: 'ok', audit: 'ok' } });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('answers 503 naming the audit check while audit writes fail, and 200 again once one succeeds', async () => {
    const org = await createOrg(t);
    const x = await agentWithSecret(t, org.token);
    const ds = t.idp.database.dataSource;
    await ds.query('ALTER TABLE audit_events RENAME TO audit_events_away');
    try {
      expect((await requestToken(t, x.clientId, x.clientSecret)).status).toBeGreaterThanOrEqual(500);
      const res = await call(t.url, 'GET', '/readyz');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ status: 'unavailable', checks: { database: 'ok', signingKeys: 'ok', audit: 'failing' } });
      expect(res.headers.get('cache-control')).toBe('no-store');
      // Alive all the same: restarting would not help.
      expect((await call(t.url, 'GET', '/healthz')).status).toBe(200);
    } finally {
      await ds.query('ALTER TABLE audit_events_away RENAME TO audit_events');
    }
    expect((await requestToken(t, x.clientId, x.clientSecret)).status).toBe(200);
    expect((await call(t.url, 'GET', '/readyz')).body).toMatchObject({ status: 'ready' });
  });

  it('says signingKeys is failing while no key set is loaded', async () => {
    const { repositories, notify } = t.idp.container;
    const unloaded = new KeyRing(repositories.keys, t.config.keyEncryptionKey!, notify, createLogger('silent'));
    const readiness = new ReadinessCheck({ dataSource: t.idp.database.dataSource, keyRing: unloaded, auditWriter: t.idp.auditWriter });
    expect(await readiness.check()).toEqual({ status: 'unavailable', checks: { database: 'ok', signingKeys: 'failing', audit: 'ok' } });
  });
});

describe('the drain (Idp.close, SIGTERM)', () => {
  it('answers /readyz 503 from its start and keeps serving for SHUTDOWN_DELAY_SECONDS, then stops listening', async () => {
    // A delay no test waits out: the second close() ends it, as a second signal would.
    const d = await startTestIdp({ env: { SHUTDOWN_DELAY_SECONDS: '300', METRICS_PORT: '0' } });
    try {
      const org = await createOrg(d);
      const x = await agentWithSecret(d, org.token);
      const url = await d.idp.listen(0, '127.0.0.1');
      const own = { url };
      expect((await call(url, 'GET', '/readyz')).status).toBe(200);

      const closing = d.idp.close();
      const draining = await call(url, 'GET', '/readyz');
      expect(draining.status).toBe(503);
      expect(draining.body).toEqual({ status: 'unavailable', draining: true });
      expect(draining.headers.get('cache-control')).toBe('no-store');
      expect((await call(url, 'GET', '/healthz')).status).toBe(200);
      // Still serving: the load balancer may send a few more before it notices.
      expect((await requestToken(own, x.clientId, x.clientSecret)).status).toBe(200);
      expect((await fetch(d.idp.metricsUrl!)).status).toBe(200);

      await d.idp.close();
      await closing;
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
      await expect(fetch(d.idp.metricsUrl!)).rejects.toThrow();
    } finally {
      await d.close();
    }
  });
});
