import { basicAuthHeader } from '../src/http/basic-auth.ts';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { eventually } from './helpers/eventually.ts';
import { agentWithSecret, createOrg, managementToken, operatorToken, requestToken } from './factories.ts';
import { describeOnPostgres, itOnEmbedded } from './helpers/postgres-only.ts';
import { LISTENER_APPLICATION_NAME } from '../src/db/notify.ts';

// The in-memory state of client authentication and token checks (src/coherence): instances
// answer from memory, and a change answered by one instance still holds on every other at
// once. Needs a PostgreSQL server (LISTEN/NOTIFY); on the embedded database nothing is cached.

let a: TestIdp;
let b: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  a = await startTestIdp();
  b = await startTestIdp({ replicaOf: a });
  org = await createOrg(a);
});
afterAll(async () => {
  await b.close();
  await a.close();
});

const basic = basicAuthHeader;

async function introspect(base: string, token: string, auth: { clientId: string; clientSecret: string }) {
  return call(base, 'POST', '/token/introspect', {
    raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams({ token }).toString() },
    headers: { authorization: basic(auth.clientId, auth.clientSecret) },
  });
}

async function revoke(base: string, token: string, auth: { clientId: string; clientSecret: string }) {
  return call(base, 'POST', '/token/revoke', {
    raw: { contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams({ token }).toString() },
    headers: { authorization: basic(auth.clientId, auth.clientSecret) },
  });
}

/** An agent whose token and secret instance b has already checked: b's memory holds them. */
async function warmAgent() {
  const agent = await agentWithSecret(a, org.token, { audiences: ['https://api.example'], scopes: ['orders:read'] });
  const first = await requestToken(b, agent.clientId, agent.clientSecret);
  expect(first.status).toBe(200);
  const token = first.body.access_token as string;
  expect((await introspect(b.url, token, agent)).body.active).toBe(true);
  return { ...agent, token };
}

async function sql<T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: a.db.url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Holds an exclusive lock on the tables that client authentication and introspection read. */
async function lockStateTables() {
  const client = new pg.Client({ connectionString: a.db.url });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE agents, credentials, revoked_tokens, signing_keys IN ACCESS EXCLUSIVE MODE');
  return async () => {
    await client.query('ROLLBACK');
    await client.end();
  };
}

describe('without a PostgreSQL server to listen on', () => {
  itOnEmbedded('caches nothing: the embedded database is read on every request', 'there the cache is on (the tests below)', () => {
    expect(a.idp.coherence.enabled).toBe(false);
    expect(a.idp.coherence.usable()).toBe(false);
  });
});

describeOnPostgres('state kept in memory', 'PGlite is one session: no LISTEN/NOTIFY, so nothing is cached', () => {
  it('each instance holds a lease in agent_idp_instances', async () => {
    const rows = await sql<{ id: string; live: boolean }>('SELECT id, lease_until > now() AS live FROM agent_idp_instances');
    expect(rows).toEqual(
      expect.arrayContaining([
        { id: a.idp.coherence.instanceId, live: true },
        { id: b.idp.coherence.instanceId, live: true },
      ]),
    );
    expect(a.idp.coherence.usable()).toBe(true);
    expect(b.idp.coherence.usable()).toBe(true);
  });

  it('answers /token and introspection from memory, without reading the state tables', async () => {
    const agent = await warmAgent();
    const unlock = await lockStateTables();
    try {
      // A read of any of those tables would wait for the lock; these answer at once.
      const issued = await requestToken(b, agent.clientId, agent.clientSecret);
      expect(issued.status).toBe(200);
      expect((await introspect(b.url, agent.token, agent)).body.active).toBe(true);
    } finally {
      await unlock();
    }
  });

  it('a suspension answered by one instance holds on the other at once', async () => {
    const agent = await warmAgent();
    const res = await api(a.url, org.token).patch(`/api/v1/agents/${agent.clientId}`, { body: { status: 'suspended' } });
    expect(res.status).toBe(200);
    expect((await requestToken(b, agent.clientId, agent.clientSecret)).body.error).toBe('invalid_client');
    expect((await introspect(b.url, agent.token, { clientId: org.admin.clientId, clientSecret: org.admin.clientSecret })).body).toEqual({ active: false });
  });

  it('a scope taken away through one instance stops counting on the other at once', async () => {
    const agent = await warmAgent();
    await api(a.url, org.token).patch(`/api/v1/agents/${agent.clientId}`, { body: { scopes: ['orders:write'] } });
    const res = await requestToken(b, agent.clientId, agent.clientSecret, { scope: 'orders:read' });
    expect(res.body.error).toBe('invalid_scope');
  });

  it('a revoked credential, a revoked token and a revoked key stop on the other instance at once', async () => {
    const agent = await warmAgent();
    expect((await api(a.url, org.token).delete(`/api/v1/agents/${agent.clientId}/credentials/${agent.credential.credentialId}`)).status).toBe(204);
    expect((await requestToken(b, agent.clientId, agent.clientSecret)).body.error).toBe('invalid_client');

    const other = await warmAgent();
    expect((await revoke(a.url, other.token, other)).status).toBe(200);
    expect((await introspect(b.url, other.token, other)).body).toEqual({ active: false });

    const third = await warmAgent();
    const kid = decodeProtectedHeader(third.token).kid!;
    expect((await api(a.url, await operatorToken(a)).post(`/api/v1/keys/${kid}/revoke`)).status).toBe(200);
    expect((await introspect(b.url, third.token, third)).body).toEqual({ active: false });
    // The org admin's own token was signed by that key too.
    org.token = await managementToken(a, org.admin.clientId, org.admin.clientSecret);
  });

  it('a change made by SQL outside agent-idp reaches every instance through its notification', async () => {
    const agent = await warmAgent();
    await sql(`UPDATE agents SET status = 'suspended' WHERE id = $1`, [agent.clientId]);
    // No writer of ours settles here: a barrier sent now is acknowledged by b only after b has
    // handled every notification committed before it, the trigger's among them. (How fast
    // that happens is a matter for the benchmarks, not for a test on a loaded machine.)
    await a.idp.coherence.settle();
    expect((await requestToken(b, agent.clientId, agent.clientSecret)).body.error).toBe('invalid_client');
  });

  it('with its LISTEN connection cut, an instance reads the database until it listens again', async () => {
    const agent = await warmAgent();
    await sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`, [
      LISTENER_APPLICATION_NAME,
    ]);
    // No notification can reach anyone now; the change is still seen at once.
    await sql(`UPDATE credentials SET status = 'revoked', revoked_at = now() WHERE id = $1`, [agent.credential.credentialId]);
    expect((await requestToken(b, agent.clientId, agent.clientSecret)).body.error).toBe('invalid_client');
    // It listens again (a reconnect every second), and answers from memory again.
    await eventually(() => a.idp.coherence.usable() && b.idp.coherence.usable());
    const fresh = await warmAgent();
    const unlock = await lockStateTables();
    try {
      expect((await requestToken(b, fresh.clientId, fresh.clientSecret)).status).toBe(200);
    } finally {
      await unlock();
    }
  });

  it('a writer waits for an instance that holds a lease but does not answer, until its lease runs out', async () => {
    const agent = await warmAgent();
    // An instance that took a lease and went silent (stalled or cut off).
    await sql(`INSERT INTO agent_idp_instances (id, lease_until) VALUES ($1, clock_timestamp() + interval '1500 milliseconds')`, [randomUUID()]);
    const started = Date.now();
    const res = await api(a.url, org.token).patch(`/api/v1/agents/${agent.clientId}`, { body: { status: 'suspended' } });
    const waited = Date.now() - started;
    expect(res.status).toBe(200);
    // It answered only once the silent lease had run out (no upper bound: a loaded machine may be slow).
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(
      await sql(`SELECT 1 FROM agent_idp_instances WHERE lease_until > clock_timestamp() AND id NOT IN ($1, $2)`, [
        a.idp.coherence.instanceId,
        b.idp.coherence.instanceId,
      ]),
    ).toEqual([]);
    // Leases that ran out hold nobody up: the same write is now quicker than that wait.
    const started2 = Date.now();
    await api(a.url, org.token).patch(`/api/v1/agents/${agent.clientId}`, { body: { status: 'active' } });
    expect(Date.now() - started2).toBeLessThan(waited);
  });

  it('a stopped instance gives its lease back', async () => {
    const c = await startTestIdp({ replicaOf: a });
    const id = c.idp.coherence.instanceId;
    expect(await sql('SELECT 1 FROM agent_idp_instances WHERE id = $1', [id])).toHaveLength(1);
    await c.close();
    expect(await sql('SELECT 1 FROM agent_idp_instances WHERE id = $1', [id])).toHaveLength(0);
  });
});
