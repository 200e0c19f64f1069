import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import type { DataSource } from 'typeorm';
import { migratedDatabase, type TestDatabase } from '../../test/helpers/database.ts';
import { checkAgainstContract } from '../../test/helpers/api.ts';
import type { Logger } from '../logger.ts';
import { HttpError, NotFound, ValidationFailed } from '../http/errors.ts';
import { problemHandler } from '../http/problem.ts';
import { requestContext } from '../http/request-context.ts';
import type { AuditAction, AuditEvent, AuditEventInput } from './audit-event.ts';
import { AuditWriter } from './audit.writer.ts';
import { AuditRepository, decodeCursor, encodeCursor, type AuditFilters } from './audit.repository.ts';
import { AuditService, type AuditQuery, type AuditReader } from './audit.service.ts';
import { presentAuditEvent } from './audit.presenter.ts';
import { auditRoutes } from './audit.routes.ts';

// The audit log's reads (repository, service, routes) against a real database.

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const DAY = 86_400_000;

let db: TestDatabase;
let ds: DataSource;
let writer: AuditWriter;
let repo: AuditRepository;
let service: AuditService;
let clock = new Date();

beforeAll(async () => {
  ({ db, ds } = await migratedDatabase());
  writer = new AuditWriter(ds, quiet, { now: () => clock });
  repo = new AuditRepository(ds);
  service = new AuditService(ds, { retentionDays: 90 });
});
afterAll(async () => {
  await writer?.close();
  await ds?.destroy();
  await db?.drop();
});

const ACTIONS: AuditAction[] = ['token.issued', 'token.denied', 'agent.created', 'credential.rotated'];
const ORG_A = randomUUID();
const ORG_B = randomUUID();
const ROOT = randomUUID();
const AGENTS = Array.from({ length: 5 }, () => randomUUID());
const ADMINS = Array.from({ length: 3 }, () => randomUUID());

/** Writes events whose times come from `at(i)`; the writer batches them. */
async function seed(count: number, orgId: string | null, at: (i: number) => Date, shape: (i: number) => Partial<AuditEventInput> = () => ({})): Promise<AuditEvent[]> {
  const writes: Promise<AuditEvent>[] = [];
  for (let i = 0; i < count; i++) {
    clock = at(i);
    const action = ACTIONS[i % ACTIONS.length];
    writes.push(
      writer.write({
        orgId,
        actor: { type: 'agent', id: ADMINS[i % ADMINS.length] },
        action,
        target: { type: 'agent', id: null },
        agentId: AGENTS[i % AGENTS.length],
        outcome: action === 'token.denied' ? 'failure' : 'success',
        requestId: randomUUID(),
        ip: '198.51.100.1',
        userAgent: 'jest',
        details: { i },
        ...shape(i),
      }),
    );
  }
  clock = new Date();
  return Promise.all(writes);
}

const newestFirst = (a: AuditEvent, b: AuditEvent) =>
  b.occurredAt.getTime() - a.occurredAt.getTime() || (a.eventId < b.eventId ? 1 : a.eventId > b.eventId ? -1 : 0);

async function everyPage(reader: AuditReader, query: AuditQuery, between?: () => Promise<unknown>): Promise<{ events: AuditEvent[]; pages: number }> {
  const events: AuditEvent[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await service.page(reader, { ...query, cursor });
    pages++;
    events.push(...page.rows);
    cursor = page.nextCursor ?? undefined;
    if (between) await between();
  } while (cursor);
  return { events, pages };
}

async function rejection(promise: Promise<unknown>): Promise<HttpError> {
  try {
    await promise;
  } catch (err) {
    return err as HttpError;
  }
  throw new Error('expected a rejection');
}

const readerA: AuditReader = { orgId: ORG_A, isRoot: false };
const readerB: AuditReader = { orgId: ORG_B, isRoot: false };
const readerRoot: AuditReader = { orgId: ROOT, isRoot: true };

let seededA: AuditEvent[];
let seededB: AuditEvent[];
let seededRoot: AuditEvent[];
let unowned: AuditEvent[];

beforeAll(async () => {
  const base = Date.now() - 2 * DAY;
  // Three events per millisecond: the event id breaks the ties.
  seededA = await seed(230, ORG_A, (i) => new Date(base + Math.floor(i / 3) * 1000));
  seededB = await seed(40, ORG_B, (i) => new Date(base + i * 1000));
  seededRoot = await seed(6, ROOT, (i) => new Date(base + i * 1000));
  unowned = await seed(4, null, (i) => new Date(base + i * 1000), () => ({ actor: { type: 'scheduler', id: 'key-rotation' }, action: 'key.rotated', target: { type: 'key', id: 'kid' }, agentId: null }));
});

describe('keyset pages', () => {
  it('cover a set exactly once, newest first, while new events arrive between pages', async () => {
    const org = randomUUID();
    const base = Date.now() - DAY;
    const seeded = await seed(101, org, (i) => new Date(base + Math.floor(i / 4) * 10));
    let arrivals = 0;
    const { events, pages } = await everyPage({ orgId: org, isRoot: false }, { limit: 10 }, async () => {
      // New events while paging, some in the same millisecond as each other.
      await seed(3, org, () => new Date());
      arrivals += 3;
    });
    expect(pages).toBe(11);
    expect(arrivals).toBe(33);
    expect(events.map((e) => e.eventId)).toEqual([...seeded].sort(newestFirst).map((e) => e.eventId));
    expect(new Set(events.map((e) => e.eventId)).size).toBe(101);
  });

  it('cross the widening windows of days (1, 7, 30, the rest) without a gap or a repeat', async () => {
    const org = randomUUID();
    const reader = { orgId: org, isRoot: false };
    const now = Date.now();
    // Days ago, around each window's edge; one a little in the future (a clock ahead).
    const ages = [-0.05, 0, 0.2, 0.99, 1, 1.01, 3, 6.99, 7, 7.01, 20, 29.99, 30, 30.01, 45, 60, 85, 89.5];
    const seeded = await seed(ages.length * 2, org, (i) => new Date(now - ages[Math.floor(i / 2)] * DAY));
    const expected = (keep: (e: AuditEvent) => boolean) => seeded.filter(keep).sort(newestFirst).map((e) => e.eventId);
    for (const limit of [1, 3, 7, 200]) {
      expect((await everyPage(reader, { limit })).events.map((e) => e.eventId)).toEqual(expected(() => true));
    }
    const from = new Date(now - 30.005 * DAY);
    const to = new Date(now - 1.005 * DAY);
    const { events } = await everyPage(reader, { from: from.toISOString(), to: to.toISOString(), limit: 2 });
    expect(events.map((e) => e.eventId)).toEqual(expected((e) => e.occurredAt >= from && e.occurredAt < to));
    const streamed: string[] = [];
    for await (const e of repo.stream(org, {}, { chunkSize: 4 })) streamed.push(e.eventId);
    expect(streamed).toEqual(expected(() => true));
  });

  it('default to 50 and allow 1..200', async () => {
    expect((await service.page(readerA, {})).rows).toHaveLength(50);
    expect((await service.page(readerA, { limit: 200 })).rows).toHaveLength(200);
    expect((await service.page(readerA, { limit: 1 })).rows).toHaveLength(1);
    for (const limit of [0, 201, 1.5]) {
      const err = await rejection(service.page(readerA, { limit }));
      expect(err).toBeInstanceOf(ValidationFailed);
      expect(err.errors).toEqual([expect.objectContaining({ field: 'query/limit' })]);
    }
  });

  it('end with a null cursor on the last page', async () => {
    const last = await service.page(readerB, { limit: 40 });
    expect(last.rows).toHaveLength(40);
    expect(last.nextCursor).toBeNull();
    const first = await service.page(readerB, { limit: 39 });
    expect(first.nextCursor).not.toBeNull();
    expect((await service.page(readerB, { limit: 39, cursor: first.nextCursor! })).rows).toHaveLength(1);
  });
});

describe('filters', () => {
  const cases: [string, () => AuditQuery, (e: AuditEvent) => boolean][] = [
    ['agentId', () => ({ agentId: AGENTS[2] }), (e) => e.agentId === AGENTS[2]],
    ['action', () => ({ action: 'credential.rotated' }), (e) => e.action === 'credential.rotated'],
    ['outcome', () => ({ outcome: 'failure' }), (e) => e.outcome === 'failure'],
    ['actorId', () => ({ actorId: ADMINS[1] }), (e) => e.actor.id === ADMINS[1]],
    [
      'from (inclusive) and to (exclusive)',
      () => ({ from: seededA[30].occurredAt.toISOString(), to: seededA[90].occurredAt.toISOString() }),
      (e) => e.occurredAt >= seededA[30].occurredAt && e.occurredAt < seededA[90].occurredAt,
    ],
    ['action and agentId', () => ({ action: 'token.issued', agentId: AGENTS[0] }), (e) => e.action === 'token.issued' && e.agentId === AGENTS[0]],
    ['actorId and outcome', () => ({ actorId: ADMINS[0], outcome: 'success' }), (e) => e.actor.id === ADMINS[0] && e.outcome === 'success'],
  ];

  it.each(cases)('%s', async (_name, query, keep) => {
    const expected = seededA.filter(keep).sort(newestFirst);
    expect(expected.length).toBeGreaterThan(5);
    const { events } = await everyPage(readerA, { ...query(), limit: 7 });
    expect(events.map((e) => e.eventId)).toEqual(expected.map((e) => e.eventId));
  });

  it('match nothing rather than fail for values that name nothing', async () => {
    expect((await service.page(readerA, { agentId: randomUUID() })).rows).toEqual([]);
    expect((await service.page(readerA, { action: 'key.deleted' })).rows).toEqual([]);
    expect((await service.page(readerA, { actorId: "'; DROP TABLE audit_events; --" })).rows).toEqual([]);
  });

  it('refuse a from before the retention window, and a to before from', async () => {
    const old = await rejection(service.page(readerA, { from: new Date(Date.now() - 91 * DAY).toISOString() }));
    expect(old).toBeInstanceOf(ValidationFailed);
    expect(old.status).toBe(400);
    expect(old.message).toMatch(/retention window.*kept for 90 days/);
    expect(old.errors).toEqual([expect.objectContaining({ field: 'query/from' })]);

    const reversed = await rejection(service.page(readerA, { from: new Date(Date.now() - DAY).toISOString(), to: new Date(Date.now() - 2 * DAY).toISOString() }));
    expect(reversed.errors).toEqual([expect.objectContaining({ field: 'query/to' })]);
  });

  it('never show events older than the window, even before their day is dropped', async () => {
    const org = randomUUID();
    const [old] = await seed(1, org, () => new Date(Date.now() - 90 * DAY - 60_000));
    await seed(1, org, () => new Date());
    const { rows } = await service.page({ orgId: org, isRoot: false }, {});
    expect(rows).toHaveLength(1);
    expect(rows[0].eventId).not.toBe(old.eventId);
    expect(await repo.findInOrg(org, old.eventId)).not.toBeNull();
  });
});

describe('cursors', () => {
  it('are opaque and refused when tampered with (400 on query/cursor)', async () => {
    const { nextCursor } = await service.page(readerA, { limit: 5 });
    const good = nextCursor!;
    const position = decodeCursor(good);
    expect(encodeCursor(position)).toBe(good);
    const flipped = good.slice(0, 10) + (good[10] === 'A' ? 'B' : 'A') + good.slice(11);
    const tampered = [
      'garbage',
      flipped,
      `${good}A`,
      Buffer.from('2026-01-01T00:00:00.000000Z|not-a-uuid').toString('base64url'),
      Buffer.from(`2026-13-45T00:00:00.000000Z|${randomUUID()}`).toString('base64url'),
      Buffer.from(`2026-01-01T00:00:00.000Z|${randomUUID()}`).toString('base64url'),
      Buffer.from(`2026-01-01T00:00:00.000000Z|${randomUUID()}' OR 1=1`).toString('base64url'),
    ];
    for (const cursor of tampered) {
      const err = await rejection(service.page(readerA, { cursor }));
      expect(err).toBeInstanceOf(ValidationFailed);
      expect(err.errors).toEqual([{ field: 'query/cursor', message: expect.any(String) }]);
    }
  });

  it("of one org open nothing of it to another", async () => {
    const { nextCursor } = await service.page(readerA, { limit: 5 });
    const { rows } = await service.page(readerB, { cursor: nextCursor!, limit: 200 });
    expect(rows.every((e) => e.orgId === ORG_B)).toBe(true);
  });
});

describe('org isolation', () => {
  it('each org sees only its own events', async () => {
    const a = await everyPage(readerA, { limit: 200 });
    const b = await everyPage(readerB, { limit: 200 });
    expect(a.events.every((e) => e.orgId === ORG_A)).toBe(true);
    expect(b.events.map((e) => e.eventId).sort()).toEqual(seededB.map((e) => e.eventId).sort());
    expect(await repo.findInOrg(ORG_B, seededA[0].eventId)).toBeNull();
    expect(await rejection(service.get(readerB, seededA[0].eventId))).toBeInstanceOf(NotFound);
    expect((await service.get(readerA, seededA[0].eventId)).eventId).toBe(seededA[0].eventId);
    expect((await service.get(readerA, seededA[0].eventId.toUpperCase())).eventId).toBe(seededA[0].eventId);
  });

  it('finds an event by an id that carries no time (not a UUIDv7) too', async () => {
    const [{ event_id }] = await ds.query(
      `INSERT INTO audit_events (event_id, occurred_at, org_id, actor_type, actor_id, action, target_type, outcome, details)
       VALUES (gen_random_uuid(), now() - interval '3 days', $1, 'system', NULL, 'agent.created', 'agent', 'success', '{}')
       RETURNING event_id`,
      [ORG_B],
    );
    expect((await service.get(readerB, event_id)).eventId).toBe(event_id);
    expect(await repo.findInOrg(ORG_A, event_id)).toBeNull();
  });

  it('the root org also sees the events of no org, and no other org’s', async () => {
    const { events } = await everyPage(readerRoot, { limit: 3 });
    expect(events.map((e) => e.eventId)).toEqual([...seededRoot, ...unowned].sort(newestFirst).map((e) => e.eventId));
    expect((await service.get(readerRoot, unowned[0].eventId)).orgId).toBeNull();
    expect(await rejection(service.get(readerRoot, seededA[0].eventId))).toBeInstanceOf(NotFound);
    // A tenant does not see them.
    expect(await rejection(service.get(readerA, unowned[0].eventId))).toBeInstanceOf(NotFound);
    const { rows } = await service.page(readerRoot, { action: 'key.rotated' });
    expect(rows.map((e) => e.eventId).sort()).toEqual(unowned.map((e) => e.eventId).sort());
  });
});

describe('export stream', () => {
  it('yields every matching event once, newest first, in keyset chunks', async () => {
    const streamed: AuditEvent[] = [];
    for await (const e of repo.stream(ORG_A, { action: 'token.denied' } as AuditFilters, { chunkSize: 7 })) streamed.push(e);
    expect(streamed.map((e) => e.eventId)).toEqual(seededA.filter((e) => e.action === 'token.denied').sort(newestFirst).map((e) => e.eventId));
  });
});

describe('presented events', () => {
  it('match openapi/openapi.yaml', async () => {
    const page = await service.page(readerRoot, { limit: 10 });
    const body = { data: page.rows.map(presentAuditEvent), nextCursor: page.nextCursor };
    expect(() => checkAgainstContract('GET', '/api/v1/audit', 200, 'application/json', body)).not.toThrow();
    const one = presentAuditEvent(await service.get(readerA, seededA[5].eventId));
    expect(() => checkAgainstContract('GET', `/api/v1/audit/${seededA[5].eventId}`, 200, 'application/json', one)).not.toThrow();
    expect(Object.keys(one)).toEqual(['eventId', 'occurredAt', 'orgId', 'actor', 'action', 'target', 'outcome', 'requestId', 'ip', 'userAgent', 'details']);
  });
});

describe('the routes (on a bare management router)', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    // Stands in for the bearer check: the org and scopes come from test headers.
    const app = new Koa();
    const router = new Router({ prefix: '/api/v1' });
    router.use(problemHandler(quiet));
    router.use(async (ctx, next) => {
      const orgId = ctx.get('x-test-org');
      ctx.state.actor = { agentId: randomUUID(), orgId, isRoot: orgId === ROOT, scopes: new Set(ctx.get('x-test-scopes').split(' ')), jti: 'x' };
      await next();
    });
    auditRoutes(router, service);
    app.use(requestContext(quiet));
    app.use(router.routes());
    server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  async function get(path: string, orgId = ORG_A, scopes = 'audit:read') {
    const res = await fetch(base + path, { headers: { 'x-test-org': orgId, 'x-test-scopes': scopes } });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    const body = /^application\/(problem\+)?json$/.test(type.split(';')[0]) && text ? JSON.parse(text) : text;
    if (!type.startsWith('application/x-ndjson')) checkAgainstContract('GET', path.split('?')[0], res.status, type, body);
    return { status: res.status, headers: res.headers, body, text };
  }

  it('page with nextCursor and an RFC 8288 Link to the next page', async () => {
    const expected = seededA.filter((e) => e.action === 'agent.created').sort(newestFirst);
    const seen: string[] = [];
    let path: string | undefined = '/api/v1/audit?action=agent.created&limit=25';
    while (path) {
      const res = await get(path);
      expect(res.status).toBe(200);
      seen.push(...res.body.data.map((e: { eventId: string }) => e.eventId));
      const link = res.headers.get('link');
      if (res.body.nextCursor) {
        expect(link).toBe(`</api/v1/audit?action=agent.created&limit=25&cursor=${res.body.nextCursor}>; rel="next"`);
        path = /^<([^>]+)>; rel="next"$/.exec(link!)![1];
      } else {
        expect(link).toBeNull();
        path = undefined;
      }
    }
    expect(seen).toEqual(expected.map((e) => e.eventId));
  });

  it('answer bad queries with a 400 problem naming the field', async () => {
    for (const [query, field] of [
      ['limit=500', 'query/limit'],
      ['limit=0', 'query/limit'],
      ['cursor=not%20base64!', 'query/cursor'],
      [`cursor=${Buffer.from('nope').toString('base64url')}`, 'query/cursor'],
      ['agentId=123', 'query/agentId'],
      ['action=DROP%20TABLE', 'query/action'],
      ['outcome=maybe', 'query/outcome'],
      ['from=yesterday', 'query/from'],
      [`from=${new Date(Date.now() - 100 * DAY).toISOString()}`, 'query/from'],
      ['unknown=1', 'query/unknown'],
    ]) {
      const res = await get(`/api/v1/audit?${query}`);
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
  });

  it('get one event of the own org; 404 for another org’s and for what is not a UUID', async () => {
    const id = seededA[3].eventId;
    const mine = await get(`/api/v1/audit/${id}`);
    expect(mine.status).toBe(200);
    expect(mine.body.eventId).toBe(id);
    expect((await get(`/api/v1/audit/${id}`, ORG_B)).status).toBe(404);
    expect((await get('/api/v1/audit/not-a-uuid')).status).toBe(404);
  });

  it('need the audit:read scope', async () => {
    for (const path of ['/api/v1/audit', '/api/v1/audit/export', `/api/v1/audit/${seededA[0].eventId}`]) {
      expect((await get(path, ORG_A, 'agents:read')).status).toBe(403);
    }
  });

  it('export NDJSON, newest first, with the filters', async () => {
    const res = await get('/api/v1/audit/export?outcome=failure');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = res.text.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((e) => e.eventId)).toEqual(seededA.filter((e) => e.outcome === 'failure').sort(newestFirst).map((e) => e.eventId));
    for (const line of lines.slice(0, 3)) {
      expect(() => checkAgainstContract('GET', `/api/v1/audit/${line.eventId}`, 200, 'application/json', line)).not.toThrow();
    }
    const empty = await get(`/api/v1/audit/export?agentId=${randomUUID()}`);
    expect(empty.status).toBe(200);
    expect(empty.text).toBe('');
    expect((await get('/api/v1/audit/export?limit=5')).status).toBe(400);
  });
});
