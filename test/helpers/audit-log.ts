import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { DAY_MS } from '../../src/lib/time.ts';
import { migratedDatabase, type TestDatabase } from './database.ts';
import type { Logger } from '../../src/lib/logger.ts';
import type { HttpError } from '../../src/http/errors.ts';
import type { AuditAction, AuditEvent, AuditEventInput } from '../../src/audit/audit-event.ts';
import { AuditWriter } from '../../src/audit/audit.writer.ts';
import { AuditRepository } from '../../src/audit/audit.repository.ts';
import { AuditService, type AuditQuery, type AuditReader } from '../../src/audit/audit.service.ts';

// A migrated database holding a known audit log: 230 events of org A (three per millisecond),
// 40 of org B, 6 of the root org and 4 of no org, spread over the last two days. Shared by the
// audit log's read tests (repository, service, routes).

export const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
export const DAY = DAY_MS;

const ACTIONS: AuditAction[] = ['token.issued', 'token.denied', 'agent.created', 'credential.rotated'];
export const ORG_A = randomUUID();
export const ORG_B = randomUUID();
export const ROOT = randomUUID();
export const AGENTS = Array.from({ length: 5 }, () => randomUUID());
export const ADMINS = Array.from({ length: 3 }, () => randomUUID());

export const readerA: AuditReader = { orgId: ORG_A, isRoot: false };
export const readerB: AuditReader = { orgId: ORG_B, isRoot: false };
export const readerRoot: AuditReader = { orgId: ROOT, isRoot: true };

export const newestFirst = (a: AuditEvent, b: AuditEvent) =>
  b.occurredAt.getTime() - a.occurredAt.getTime() || (a.eventId < b.eventId ? 1 : a.eventId > b.eventId ? -1 : 0);

export async function rejection(promise: Promise<unknown>): Promise<HttpError> {
  try {
    await promise;
  } catch (err) {
    return err as HttpError;
  }
  throw new Error('expected a rejection');
}

export interface SeededAuditLog {
  db: TestDatabase;
  ds: DataSource;
  writer: AuditWriter;
  repo: AuditRepository;
  service: AuditService;
  seededA: AuditEvent[];
  seededB: AuditEvent[];
  seededRoot: AuditEvent[];
  unowned: AuditEvent[];
  /** Writes events whose times come from `at(i)`; the writer batches them. */
  seed(count: number, orgId: string | null, at: (i: number) => Date, shape?: (i: number) => Partial<AuditEventInput>): Promise<AuditEvent[]>;
  /** Every page of a query, following the cursors; `between` runs after each page. */
  everyPage(reader: AuditReader, query: AuditQuery, between?: () => Promise<unknown>): Promise<{ events: AuditEvent[]; pages: number }>;
  close(): Promise<void>;
}

export async function seededAuditLog(): Promise<SeededAuditLog> {
  const { db, ds } = await migratedDatabase();
  let clock = new Date();
  const repo = new AuditRepository(ds);
  const writer = new AuditWriter(repo, quiet, { now: () => clock });
  const service = new AuditService(repo, { retentionDays: 90 });

  async function seed(
    count: number,
    orgId: string | null,
    at: (i: number) => Date,
    shape: (i: number) => Partial<AuditEventInput> = () => ({}),
  ): Promise<AuditEvent[]> {
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

  async function everyPage(reader: AuditReader, query: AuditQuery, between?: () => Promise<unknown>) {
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

  const base = Date.now() - 2 * DAY;
  // Three events per millisecond: the event id breaks the ties.
  const seededA = await seed(230, ORG_A, (i) => new Date(base + Math.floor(i / 3) * 1000));
  const seededB = await seed(40, ORG_B, (i) => new Date(base + i * 1000));
  const seededRoot = await seed(6, ROOT, (i) => new Date(base + i * 1000));
  const unowned = await seed(
    4,
    null,
    (i) => new Date(base + i * 1000),
    () => ({ actor: { type: 'scheduler', id: 'key-rotation' }, action: 'key.rotated', target: { type: 'key', id: 'kid' }, agentId: null }),
  );
  return {
    db,
    ds,
    writer,
    repo,
    service,
    seededA,
    seededB,
    seededRoot,
    unowned,
    seed,
    everyPage,
    async close() {
      await writer.close();
      await ds.destroy();
      await db.drop();
    },
  };
}
