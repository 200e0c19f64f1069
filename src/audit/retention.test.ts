import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { eventually } from '../../test/helpers/eventually.ts';
import { migratedDatabase, type TestDatabase } from '../../test/helpers/database.ts';
import type { Logger } from '../lib/logger.ts';
import { AuditWriter } from './audit.writer.ts';
import { AuditRepository, partitionName } from './audit.repository.ts';
import { AuditMaintenance, AUDIT_MAINTENANCE_LOCK } from './retention.ts';
import { DAY_MS as DAY } from '../lib/time.ts';

// Retention with a driven clock: no waiting for days.

let db: TestDatabase;
let ds: DataSource;
let repo: AuditRepository;
let clock: Date;
let writer: AuditWriter;
const logged: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
const logger: Logger = {
  debug: (msg, fields) => void logged.push({ level: 'debug', msg, fields }),
  info: (msg, fields) => void logged.push({ level: 'info', msg, fields }),
  warn: (msg, fields) => void logged.push({ level: 'warn', msg, fields }),
  error: (msg, fields) => void logged.push({ level: 'error', msg, fields }),
};

// Each test on a database of its own: partitions are the state under test, and no test may
// depend on which ran before it.
beforeEach(async () => {
  logged.length = 0;
  ({ db, ds } = await migratedDatabase());
  repo = new AuditRepository(ds);
  writer = new AuditWriter(repo, logger, { now: () => clock });
});
afterEach(async () => {
  await writer?.close();
  await ds?.destroy();
  await db?.drop();
});

const ORG = randomUUID();
const day = (iso: string) => new Date(`${iso}T00:00:00Z`).getTime();
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** The job on a driven clock; its own events are written at the same time. */
function maintenance(now: Date, options: { firstRunDelayMs?: number } = {}) {
  clock = now;
  return new AuditMaintenance(ds, repo, writer, logger, { retentionDays: 90, now: () => now, ...options });
}

async function writeAt(at: Date, tag: string) {
  clock = at;
  return writer.write({
    orgId: ORG,
    actor: { type: 'agent', id: randomUUID() },
    action: 'agent.updated',
    target: { type: 'agent', id: randomUUID() },
    outcome: 'success',
    requestId: null,
    ip: null,
    userAgent: null,
    details: { tag },
  });
}

const eventsOf = (
  action: string,
): Promise<
  { org_id: string | null; actor_type: string; actor_id: string; target_type: string; target_id: string | null; details: { partitions: string[] } }[]
> => ds.query(`SELECT org_id, actor_type, actor_id, target_type, target_id, details FROM audit_events WHERE action = $1 ORDER BY occurred_at`, [action]);

describe('AuditMaintenance', () => {
  // 90 days before 2030-06-15 12:00 is 2030-03-17 12:00: the days up to 2030-03-16 lie wholly
  // before it, 2030-03-17 only in part.
  const NOW = new Date('2030-06-15T12:00:00Z');

  it('drops the partitions wholly older than the window, keeps the rest, creates the days ahead, and audits it', async () => {
    const oldDays = Array.from({ length: 11 }, (_, i) => isoDay(day('2030-03-10') + i * DAY));
    for (const d of oldDays) {
      await repo.createPartition(d);
      await writeAt(new Date(`${d}T12:00:00Z`), d);
      await writeAt(new Date(`${d}T23:59:59.999Z`), d);
    }
    // Tables that are not our day partitions are never touched.
    await ds.query(`CREATE TABLE audit_events_p20300101 (x int)`);
    await ds.query(`CREATE TABLE audit_events_archive PARTITION OF audit_events FOR VALUES FROM ('2030-01-01 00:00:00+00') TO ('2030-01-02 00:00:00+00')`);
    const before = await repo.listPartitions();
    const expectDropped = before.filter((p) => p.day <= '2030-03-16').map((p) => p.name);
    // The migration's 9 days (around today) are long past on this clock, and 7 of ours.
    expect(expectDropped).toHaveLength(9 + 7);

    const result = await maintenance(NOW).run();

    expect(result.dropped).toEqual(expectDropped);
    const expectCreated = Array.from({ length: 9 }, (_, i) => partitionName(isoDay(day('2030-06-14') + i * DAY)));
    expect(result.created).toEqual(expectCreated);
    const after = (await repo.listPartitions()).map((p) => p.name);
    expect(after).toEqual([...['2030-03-17', '2030-03-18', '2030-03-19', '2030-03-20'].map(partitionName), ...expectCreated]);

    const kept: { tag: string; n: string }[] = await ds.query(
      `SELECT details->>'tag' AS tag, count(*)::text AS n FROM audit_events WHERE org_id = $1 GROUP BY 1 ORDER BY 1`,
      [ORG],
    );
    expect(kept).toEqual(['2030-03-17', '2030-03-18', '2030-03-19', '2030-03-20'].map((tag) => ({ tag, n: '2' })));
    const [{ parent, standalone, archive }] = await ds.query(
      `SELECT to_regclass('audit_events') IS NOT NULL AS parent, to_regclass('audit_events_p20300101') IS NOT NULL AS standalone, to_regclass('audit_events_archive') IS NOT NULL AS archive`,
    );
    expect({ parent, standalone, archive }).toEqual({ parent: true, standalone: true, archive: true });

    const [purged] = await eventsOf('audit.retention_purged');
    expect(purged).toMatchObject({ org_id: null, actor_type: 'scheduler', actor_id: 'audit-maintenance', target_type: 'audit_partition', target_id: null });
    expect(purged.details).toMatchObject({ partitions: expectDropped, retentionDays: 90, cutoff: '2030-03-17T12:00:00.000Z' });
    const [created] = await eventsOf('audit.partitions_created');
    expect(created.details.partitions).toEqual(expectCreated);
    expect(logged).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ level: 'info', msg: 'audit retention purged partitions', fields: expect.objectContaining({ partitions: expectDropped }) }),
        expect.objectContaining({ level: 'info', msg: 'audit partitions created', fields: { partitions: expectCreated } }),
      ]),
    );

    // Run again: nothing left to do, nothing more audited.
    expect(await maintenance(NOW).run()).toEqual({ created: [], dropped: [] });
    expect(await eventsOf('audit.retention_purged')).toHaveLength(1);
    expect(await eventsOf('audit.partitions_created')).toHaveLength(1);
  });

  it('does nothing while another instance holds the lock', async () => {
    if (db.embedded) {
      // The embedded database is one session that a single process owns (DATA_DIR is locked),
      // so there is no other instance to exclude; the in-process guard is tested below.
      return;
    }
    const later = new Date(NOW.getTime() + 10 * DAY);
    const partitions = await repo.listPartitions();
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query(`SELECT pg_advisory_lock(${AUDIT_MAINTENANCE_LOCK}::bigint)`);
      expect(await maintenance(later).run()).toEqual({ created: [], dropped: [] });
      expect(await repo.listPartitions()).toEqual(partitions);
      await other.query(`SELECT pg_advisory_unlock(${AUDIT_MAINTENANCE_LOCK}::bigint)`);
      expect((await maintenance(later).run()).created).toHaveLength(9);
    } finally {
      await other.end();
    }
  });

  it('runs once when called twice at the same time', async () => {
    const later = new Date(NOW.getTime() + 30 * DAY);
    const job = maintenance(later);
    const [first, second] = await Promise.all([job.run(), job.run()]);
    expect(first.created.length).toBeGreaterThan(0);
    expect(second).toEqual({ created: [], dropped: [] });
  });

  it('start() runs shortly after start and stop() waits for the run', async () => {
    const later = new Date(NOW.getTime() + 60 * DAY);
    const job = maintenance(later, { firstRunDelayMs: 1 });
    const name = partitionName(isoDay(later.getTime() + 7 * DAY));
    job.start();
    await eventually(async () => Boolean((await ds.query(`SELECT to_regclass($1) AS t`, [name]))[0].t));
    await job.stop();
    expect((await ds.query(`SELECT to_regclass($1) AS t`, [name]))[0].t).toBe(name);
  });
});
