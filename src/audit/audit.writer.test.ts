import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { itOnPostgres } from '../../test/helpers/postgres-only.ts';
import { jest } from '@jest/globals';
import type { DataSource } from 'typeorm';
import { migratedDatabase, type TestDatabase } from '../../test/helpers/database.ts';
import { eventually } from '../../test/helpers/eventually.ts';
import type { Logger } from '../lib/logger.ts';
import { eventIdTime, type AuditEventInput } from './audit-event.ts';
import { AuditWriter } from './audit.writer.ts';
import { AuditRepository, partitionName, utcDay } from './audit.repository.ts';

// Against a real database: PostgreSQL when DATABASE_URL is set, else the embedded PGlite.

let db: TestDatabase;
let ds: DataSource;
const logged: { msg: string; fields?: Record<string, unknown> }[] = [];
const logger: Logger = {
  debug() {},
  info: (msg, fields) => void logged.push({ msg, fields }),
  warn: (msg, fields) => void logged.push({ msg, fields }),
  error: (msg, fields) => void logged.push({ msg, fields }),
};

beforeAll(async () => {
  ({ db, ds } = await migratedDatabase());
});
afterAll(async () => {
  await ds?.destroy();
  await db?.drop();
});

const ORG = randomUUID();
const AGENT = randomUUID();

function event(overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    orgId: ORG,
    actor: { type: 'client', id: AGENT },
    action: 'token.issued',
    target: { type: 'token', id: randomUUID() },
    outcome: 'success',
    requestId: randomUUID(),
    ip: '203.0.113.7',
    userAgent: 'jest',
    details: { scope: 'orders:read' },
    ...overrides,
  };
}

/** Another connection than the writer's. */
async function otherConnection<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const tagged = (tag: string) => ds.query(`SELECT event_id, xmin::text AS xmin FROM audit_events WHERE details->>'tag' = $1`, [tag]);

describe('AuditWriter', () => {
  it('puts the events of concurrent callers into shared INSERTs, each acknowledged after its commit', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger, { maxBatch: 50, flushIntervalMs: 5 });
    const written = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.write(event({ details: { tag: 'batched', i } }))));
    expect(new Set(written.map((e) => e.eventId)).size).toBe(200);
    // Event ids are UUIDv7 carrying the event's millisecond.
    for (const e of written) expect(eventIdTime(e.eventId)).toBe(e.occurredAt.getTime());

    // Rows committed by one INSERT share its transaction id: 200 events, 4 statements of 50.
    const rows: { event_id: string; xmin: string }[] = await tagged('batched');
    expect(rows).toHaveLength(200);
    expect(new Set(rows.map((r) => r.xmin)).size).toBe(4);
    await writer.close();
  });

  it('sends a lone event without waiting, and gathers what arrives during an INSERT into the next one', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger);
    // Idle: one event goes on the next turn of the event loop, not after a timer: with every
    // setTimeout frozen, the write still commits.
    jest.useFakeTimers({
      doNotFake: ['setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'Date', 'performance', 'hrtime', 'setInterval', 'clearInterval'],
    });
    try {
      await writer.write(event({ details: { tag: 'alone' } }));
    } finally {
      jest.useRealTimers();
    }
    expect(await tagged('alone')).toHaveLength(1);

    // Busy: while the first INSERT waits on a lock, 30 more events queue; they go as one INSERT.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE audit_events IN EXCLUSIVE MODE');
    const first = writer.write(event({ details: { tag: 'during' } }));
    if (db.embedded) {
      // PGlite is one session: the INSERT queues in pglite-socket, out of sight.
      await new Promise((r) => setTimeout(r, 100));
    } else {
      // The first INSERT is running, and waiting for the lock.
      await eventually(
        async () => (await blocker.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`)).rowCount! > 0,
      );
    }
    const queued = Array.from({ length: 30 }, () => writer.write(event({ details: { tag: 'queued' } })));
    await blocker.query('COMMIT');
    await blocker.end();
    await Promise.all([first, ...queued]);
    const rows: { xmin: string }[] = await tagged('queued');
    expect(rows).toHaveLength(30);
    expect(new Set(rows.map((r) => r.xmin)).size).toBe(1);
    expect((await tagged('during'))[0].xmin).not.toBe(rows[0].xmin);
    await writer.close();
  });

  itOnPostgres('sends a second INSERT on its own connection while one waits, and no third', 'the embedded database has one connection', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger, { maxInFlight: 2 });
    // Today's partition exists (a first write makes it when missing), so that only INSERTs wait for the lock.
    await writer.write(event({ details: { tag: 'pipelined-0' } }));
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE audit_events IN EXCLUSIVE MODE');
    // Asked outside the blocker's transaction, which would keep seeing its first snapshot of pg_stat_activity.
    const waiting = async () =>
      (
        await ds.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND query LIKE 'INSERT INTO audit_events%'`,
        )
      ).length as number;
    const first = writer.write(event({ details: { tag: 'pipelined-1' } }));
    await eventually(async () => (await waiting()) === 1);
    const second = writer.write(event({ details: { tag: 'pipelined-2' } }));
    await eventually(async () => (await waiting()) === 2);
    // Both slots taken: these wait in memory, and go as one INSERT once a slot is free.
    const third = Array.from({ length: 5 }, () => writer.write(event({ details: { tag: 'pipelined-3' } })));
    await new Promise((resolve) => setImmediate(resolve));
    expect(writer.queueDepth).toBe(7);
    expect(await waiting()).toBe(2);
    await blocker.query('COMMIT');
    await blocker.end();
    await Promise.all([first, second, ...third]);
    expect(new Set((await tagged('pipelined-3')).map((r: { xmin: string }) => r.xmin)).size).toBe(1);
    expect((await tagged('pipelined-1'))[0].xmin).not.toBe((await tagged('pipelined-2'))[0].xmin);
    await writer.close();
  });

  it('resolves only once the row is committed, and then it is visible to every connection', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger);
    // Another session holds a lock that the INSERT must wait for.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE audit_events IN EXCLUSIVE MODE');
    let settled = false;
    const pending = writer.write(event({ details: { tag: 'acknowledged' } })).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    await blocker.query('COMMIT');
    await blocker.end();

    const stored = await pending;
    const seen = await otherConnection((c) => c.query('SELECT action, org_id, agent_id FROM audit_events WHERE event_id = $1', [stored.eventId]));
    expect(seen.rows).toEqual([{ action: 'token.issued', org_id: ORG, agent_id: AGENT }]);
    await writer.close();
  });

  it('fails every write of a batch whose INSERT fails, and keeps working for later writes', async () => {
    await ds.query(`
      CREATE FUNCTION audit_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.details ? 'poison' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;
        RETURN NEW;
      END $$`);
    await ds.query(`CREATE TRIGGER audit_test_refuse BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_test_refuse()`);
    try {
      const writer = new AuditWriter(new AuditRepository(ds), logger, { flushIntervalMs: 20 });
      const batch = Array.from({ length: 10 }, (_, i) => writer.write(event({ details: i === 7 ? { tag: 'failed', poison: true } : { tag: 'failed' } })));
      const results = await Promise.allSettled(batch);
      expect(results.map((r) => r.status)).toEqual(Array(10).fill('rejected'));
      expect((results[0] as PromiseRejectedResult).reason.message).toMatch(/refused by test trigger/);
      expect(await tagged('failed')).toHaveLength(0);
      expect(logged.some((l) => l.msg.includes('could not be stored'))).toBe(true);

      const later = await Promise.all([writer.write(event({ details: { tag: 'after-failure' } })), writer.write(event({ details: { tag: 'after-failure' } }))]);
      expect(later).toHaveLength(2);
      expect(await tagged('after-failure')).toHaveLength(2);
      await writer.close();
    } finally {
      await ds.query(`DROP TRIGGER audit_test_refuse ON audit_events`);
      await ds.query(`DROP FUNCTION audit_test_refuse()`);
    }
  });

  it('stores no secret, token, private key or Authorization header', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger);
    const secret = `aidp_cs_${'0a'.repeat(16)}_${'Q'.repeat(42)}w`;
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    const stored = await writer.write(
      event({
        actor: { type: 'client', id: secret },
        userAgent: `curl ${jwt}`,
        details: {
          tag: 'scrubbed',
          Authorization: `Bearer ${jwt}`,
          client_secret: secret,
          clientSecret: secret,
          password: 'hunter2',
          token: jwt,
          access_token: jwt,
          nested: {
            privateKey: '-----BEGIN PRIVATE KEY-----',
            private_key: 'x',
            note: `leaked ${secret} and ${jwt}`,
            jwk: { kty: 'RSA', n: 'abc', e: 'AQAB', d: 'private', p: 'p', q: 'q' },
          },
          list: [jwt, { secret: 'x' }],
          reason: 'invalid_client',
        },
      }),
    );
    const [row] = await ds.query(`SELECT row_to_json(e)::text AS json FROM audit_events e WHERE event_id = $1`, [stored.eventId]);
    for (const leak of [secret, jwt, 'hunter2', 'BEGIN PRIVATE KEY', 'private', 'Bearer', secret.slice(-43), jwt.split('.')[1]]) {
      expect(row.json).not.toContain(leak);
    }
    const [{ details, actor_id, user_agent }] = await ds.query(`SELECT details, actor_id, user_agent FROM audit_events WHERE event_id = $1`, [stored.eventId]);
    expect(details).toEqual({
      tag: 'scrubbed',
      nested: { note: 'leaked [REDACTED] and [REDACTED]', jwk: { kty: 'RSA', n: 'abc', e: 'AQAB' } },
      list: ['[REDACTED]', {}],
      reason: 'invalid_client',
    });
    expect(actor_id).toBe('[REDACTED]');
    expect(user_agent).toBe('curl [REDACTED]');
    await writer.close();
  });

  it('stores text PostgreSQL would refuse (NUL, lone surrogates) without failing the batch', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger);
    const [odd, plain] = await Promise.all([
      writer.write(event({ actor: { type: 'client', id: 'evil\u0000client' }, details: { tag: 'odd', s: 'a\u0000b\ud800c' } })),
      writer.write(event({ details: { tag: 'odd' } })),
    ]);
    const rows = await ds.query(`SELECT event_id, actor_id, details FROM audit_events WHERE event_id IN ($1, $2) ORDER BY actor_id`, [
      odd.eventId,
      plain.eventId,
    ]);
    expect(rows).toHaveLength(2);
    expect(rows.find((r: { event_id: string }) => r.event_id === odd.eventId)).toMatchObject({
      actor_id: 'evil\uFFFDclient',
      details: { s: 'a\uFFFDb\uFFFDc' },
    });
    // A client id that is no UUID names no agent.
    expect(odd.agentId).toBeNull();
    await writer.close();
  });

  it('knows which agent an event is about', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger);
    const admin = randomUUID();
    const subject = randomUUID();
    const [created, credential, issued, scheduled] = await Promise.all([
      writer.write(event({ actor: { type: 'agent', id: admin }, action: 'agent.created', target: { type: 'agent', id: subject } })),
      writer.write(
        event({ actor: { type: 'agent', id: admin }, action: 'credential.created', target: { type: 'credential', id: randomUUID() }, agentId: subject }),
      ),
      writer.write(event({ actor: { type: 'client', id: subject.toUpperCase() } })),
      writer.write(event({ orgId: null, actor: { type: 'scheduler', id: 'key-rotation' }, action: 'key.rotated', target: { type: 'key', id: 'kid-1' } })),
    ]);
    expect([created.agentId, credential.agentId, issued.agentId, scheduled.agentId]).toEqual([subject, subject, subject, null]);
    await writer.close();
  });

  it('refuses a malformed event at once, without touching the batch', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger);
    await expect(writer.write(event({ action: 'agent.exploded' as never }))).rejects.toThrow(/unknown audit action/);
    await expect(writer.write(event({ outcome: 'maybe' as never }))).rejects.toThrow(/outcome/);
    await expect(writer.write(event({ orgId: 'acme' }))).rejects.toThrow(/orgId/);
    await expect(writer.write(event({ actor: { type: 'robot' as never, id: null } }))).rejects.toThrow(/actor type/);
    await writer.close();
  });

  it("creates a missing day's partition and retries", async () => {
    const far = new Date(Date.UTC(2031, 0, 15, 12));
    const writer = new AuditWriter(new AuditRepository(ds), logger, { now: () => far });
    const name = partitionName(utcDay(far));
    expect((await ds.query(`SELECT to_regclass($1) AS t`, [name]))[0].t).toBeNull();
    const stored = await writer.write(event({ details: { tag: 'far' } }));
    expect(stored.occurredAt).toEqual(far);
    expect((await ds.query(`SELECT tableoid::regclass::text AS part FROM audit_events WHERE event_id = $1`, [stored.eventId]))[0].part).toBe(name);
    expect(logged.some((l) => l.msg === 'created a missing audit partition')).toBe(true);
    await writer.close();
    await ds.query(`DROP TABLE ${name}`);
  });

  it('close() stores everything pending, then refuses new writes', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger, { flushIntervalMs: 10_000 });
    const pending = Array.from({ length: 5 }, () => writer.write(event({ details: { tag: 'closing' } })));
    await writer.close();
    await expect(Promise.all(pending)).resolves.toHaveLength(5);
    expect(await tagged('closing')).toHaveLength(5);
    await expect(writer.write(event())).rejects.toThrow(/closed/);
  });

  it('flush() stores what is pending without waiting for the interval', async () => {
    const writer = new AuditWriter(new AuditRepository(ds), logger, { flushIntervalMs: 10_000 });
    const pending = writer.write(event({ details: { tag: 'flushed' } }));
    await writer.flush();
    expect(await tagged('flushed')).toHaveLength(1);
    await pending;
    await writer.close();
  });
});
