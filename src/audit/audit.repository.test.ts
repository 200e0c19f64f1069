import { randomUUID } from 'node:crypto';
import { checkAgainstContract } from '../../test/helpers/api.ts';
import { NotFound, ValidationFailed } from '../http/errors.ts';
import type { AuditEvent } from './audit-event.ts';
import type { AuditRepository, AuditFilters } from './audit.repository.ts';
import { decodeCursor, encodeCursor } from './audit.repository.ts';
import type { AuditQuery, AuditService } from './audit.service.ts';
import { presentAuditEvent } from './audit.presenter.ts';
import type { DataSource } from 'typeorm';
import {
  ADMINS,
  AGENTS,
  DAY,
  ORG_A,
  ORG_B,
  newestFirst,
  readerA,
  readerB,
  readerRoot,
  rejection,
  seededAuditLog,
  type SeededAuditLog,
} from '../../test/helpers/audit-log.ts';

// The audit log's reads (repository and service) against a real database; the routes are in
// audit.routes.test.ts.

let log: SeededAuditLog;
let ds: DataSource;
let repo: AuditRepository;
let service: AuditService;
let seededA: AuditEvent[];
let seededB: AuditEvent[];
let seededRoot: AuditEvent[];
let unowned: AuditEvent[];
let seed: SeededAuditLog['seed'];
let everyPage: SeededAuditLog['everyPage'];

beforeAll(async () => {
  log = await seededAuditLog();
  ({ ds, repo, service, seededA, seededB, seededRoot, unowned, seed, everyPage } = log);
});
afterAll(() => log?.close());

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
    const expected = (keep: (e: AuditEvent) => boolean) =>
      seeded
        .filter(keep)
        .sort(newestFirst)
        .map((e) => e.eventId);
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

    const reversed = await rejection(
      service.page(readerA, { from: new Date(Date.now() - DAY).toISOString(), to: new Date(Date.now() - 2 * DAY).toISOString() }),
    );
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

  it('of one org open nothing of it to another', async () => {
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
    // In an org of its own, so that no other test's counts change.
    const org = randomUUID();
    const [{ event_id }] = await ds.query(
      `INSERT INTO audit_events (event_id, occurred_at, org_id, actor_type, actor_id, action, target_type, outcome, details)
       VALUES (gen_random_uuid(), $2, $1, 'system', NULL, 'agent.created', 'agent', 'success', '{}')
       RETURNING event_id`,
      // On a day that has its partition whatever ran before: the seeded events' day.
      [org, seededB[0].occurredAt],
    );
    expect((await service.get({ orgId: org, isRoot: false }, event_id)).eventId).toBe(event_id);
    expect(await repo.findInOrg(ORG_B, event_id)).toBeNull();
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
    expect(streamed.map((e) => e.eventId)).toEqual(
      seededA
        .filter((e) => e.action === 'token.denied')
        .sort(newestFirst)
        .map((e) => e.eventId),
    );
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
