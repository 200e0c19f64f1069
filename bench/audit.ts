// Audit log benchmark: loads N events (default 10 million) spread over 90 days into a database
// of its own, then measures the query API's pages (through AuditService, the routes' code
// path), the export stream, the batched writer, and the purge of one day.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node bench/audit.ts [--events N] [--runs 50] [--explain] [--keep] [--reuse]
//
// It creates the database aidp_bench_audit on DATABASE_URL's server and drops it at the end
// (unless --keep; --reuse measures again on a database a --keep run left, without loading).
// Not a test: it asserts nothing and takes minutes at full size.

import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { createDataSource, migrate } from '../src/db/data-source.ts';
import { CreateAuditEvents1763769600500 } from '../migrations/1763769600500-CreateAuditEvents.ts';
import type { Logger } from '../src/lib/logger.ts';
import { AuditService, type AuditQuery, type AuditReader } from '../src/audit/audit.service.ts';
import { AuditRepository, utcDay, encodeCursor } from '../src/audit/audit.repository.ts';
import { AuditWriter } from '../src/audit/audit.writer.ts';
import { AuditMaintenance } from '../src/audit/retention.ts';
import { DAY_MS as DAY } from '../src/lib/time.ts';

const DB_NAME = 'aidp_bench_audit';
const ORGS = 10;
const AGENTS_PER_ORG = 100;
const CHUNK = 1_000_000;

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '10000000' },
    runs: { type: 'string', default: '50' },
    explain: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
  },
});
const EVENTS = Number(args.events);
const RUNS = Number(args.runs);
if (!Number.isInteger(EVENTS) || EVENTS < 1000) throw new Error('--events must be a whole number of at least 1000');

const serverUrl = process.env.DATABASE_URL;
if (!serverUrl) {
  console.error('DATABASE_URL is required (a PostgreSQL server on which this script may create and drop the database aidp_bench_audit)');
  process.exit(2);
}
const benchUrl = new URL(serverUrl);
benchUrl.pathname = `/${DB_NAME}`;

const quiet: Logger = { debug() {}, info() {}, warn() {}, error: (msg, f) => console.error(msg, f) };
const log = (msg: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const started = process.hrtime.bigint();
  const result = await fn();
  return [Number(process.hrtime.bigint() - started) / 1e6, result];
}

const results: { what: string; p50: string; p95: string; note: string }[] = [];

async function measure(what: string, run: (i: number) => Promise<number>): Promise<void> {
  await run(0); // warm the plan cache and the connection
  const ms: number[] = [];
  let rows = 0;
  for (let i = 0; i < RUNS; i++) {
    const [t, n] = await timed(() => run(i));
    ms.push(t);
    rows += n;
  }
  ms.sort((a, b) => a - b);
  results.push({ what, p50: percentile(ms, 50).toFixed(2), p95: percentile(ms, 95).toFixed(2), note: `${(rows / RUNS).toFixed(0)} rows/page` });
  log(`${what}: p50 ${percentile(ms, 50).toFixed(2)} ms, p95 ${percentile(ms, 95).toFixed(2)} ms`);
}

async function load(ds: DataSource, orgs: string[], agents: string[], start: Date, spanMs: number): Promise<void> {
  const repo = new AuditRepository(ds);
  for (let t = start.getTime(); t <= Date.now() + 8 * DAY; t += DAY) await repo.createPartition(utcDay(new Date(t)));

  // Loading is faster with the secondary indexes built once afterwards; their definitions are
  // read back from the migration's, so this measures the real schema.
  const indexes: { indexname: string; indexdef: string }[] = await ds.query(
    `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_events' AND indexname <> 'audit_events_pkey'`,
  );
  for (const { indexname } of indexes) await ds.query(`DROP INDEX ${indexname}`);
  // pg_indexes shows a partitioned index as "ON ONLY": rebuilt as is it would skip the partitions.
  const definitions = indexes.map(({ indexdef }) => indexdef.replace(' ON ONLY ', ' ON '));

  const stepUs = Math.floor((spanMs * 1000) / EVENTS);
  const runner = ds.createQueryRunner();
  await runner.connect();
  await runner.query(`SET synchronous_commit = off`);
  const [loadMs] = await timed(async () => {
    for (let lo = 0; lo < EVENTS; lo += CHUNK) {
      const hi = Math.min(EVENTS, lo + CHUNK) - 1;
      const [ms] = await timed(() =>
        runner.query(
          // Mostly token.issued, as in real traffic; orgs and their agents spread evenly.
          `INSERT INTO audit_events
             (event_id, occurred_at, org_id, actor_type, actor_id, action, target_type, target_id, agent_id,
              outcome, request_id, ip, user_agent, details)
           SELECT gen_random_uuid(), ts, org, 'client', agent::text, action,
                  'token', md5(g::text), agent, CASE WHEN action = 'token.denied' THEN 'failure' ELSE 'success' END,
                  gen_random_uuid()::text, '10.' || (g % 250) || '.' || (g % 199) || '.7', 'bench-agent/1.0',
                  jsonb_build_object('scope', 'orders:read', 'aud', 'https://orders.example', 'jti', md5(g::text), 'kid', 'bench-kid')
             FROM (
               SELECT g, $1::timestamptz + (g * ${stepUs}) * interval '1 microsecond' AS ts,
                      1 + (abs(hashint8(g)) % ${ORGS}) AS org_index,
                      abs(hashint8(g + 7919)) % 1000 AS r,
                      abs(hashint8(g + 104729)) % ${AGENTS_PER_ORG} AS agent_index
                 FROM generate_series(${lo}::bigint, ${hi}::bigint) g
             ) s,
             LATERAL (SELECT ($2::uuid[])[s.org_index] AS org,
                             ($3::uuid[])[(s.org_index - 1) * ${AGENTS_PER_ORG} + s.agent_index + 1] AS agent,
                             CASE WHEN r < 800 THEN 'token.issued' WHEN r < 900 THEN 'token.introspected' WHEN r < 950 THEN 'token.denied'
                                  WHEN r < 970 THEN 'token.revoked' WHEN r < 985 THEN 'agent.updated' WHEN r < 995 THEN 'credential.rotated'
                                  ELSE 'agent.suspended' END AS action) x`,
          [start.toISOString(), orgs, agents],
        ),
      );
      log(`loaded ${hi + 1} events (${Math.round(((hi - lo + 1) / ms) * 1000)} rows/s)`);
    }
  });
  await runner.release();
  log(`load: ${(loadMs / 1000).toFixed(1)} s`);
  const [indexMs] = await timed(async () => {
    await ds.query(`SET maintenance_work_mem = '512MB'`);
    for (const definition of definitions) await ds.query(definition);
  });
  log(`indexes: ${(indexMs / 1000).toFixed(1)} s`);
  const [analyzeMs] = await timed(() => ds.query('ANALYZE audit_events'));
  log(`analyze: ${(analyzeMs / 1000).toFixed(1)} s`);
  results.push({
    what: 'load (INSERT … SELECT generate_series, then indexes, ANALYZE)',
    p50: '',
    p95: '',
    note: `${((loadMs + indexMs + analyzeMs) / 1000).toFixed(0)} s total`,
  });
}

/** True when a --keep run left a loaded database behind. */
async function loadedBefore(): Promise<boolean> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [DB_NAME]);
    if (!rows.length) return false;
  } finally {
    await client.end();
  }
  const bench = new pg.Client({ connectionString: benchUrl.toString() });
  await bench.connect();
  try {
    const { rows } = await bench.query(`SELECT to_regclass('bench_ids') IS NOT NULL AS loaded`);
    return rows[0].loaded;
  } finally {
    await bench.end();
  }
}

async function explain(ds: DataSource, sql: string, params: unknown[]): Promise<void> {
  const plan: { 'QUERY PLAN': string }[] = await ds.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${sql}`, params);
  console.log(plan.map((r) => r['QUERY PLAN']).join('\n'));
}

async function main(): Promise<void> {
  const reuse = args.reuse && (await loadedBefore());
  log(`benchmark: ${reuse ? 'the events loaded before' : `${EVENTS} events`}, ${RUNS} runs per query, database ${DB_NAME}`);
  if (!reuse) {
    await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
    await admin(`CREATE DATABASE ${DB_NAME}`);
  }
  const ds = createDataSource(benchUrl.toString(), 4);
  try {
    await ds.initialize();
    let orgs: string[];
    let agents: string[];
    let start: Date;
    if (reuse) {
      const ids: { kind: string; id: string }[] = await ds.query(`SELECT kind, id FROM bench_ids ORDER BY kind, idx`);
      orgs = ids.filter((r) => r.kind === 'org').map((r) => r.id);
      agents = ids.filter((r) => r.kind === 'agent').map((r) => r.id);
      start = new Date((await ds.query(`SELECT min(occurred_at) AS t FROM audit_events`))[0].t);
    } else {
      await migrate(ds);
      const [{ table }] = await ds.query(`SELECT to_regclass('audit_events') AS table`);
      if (!table) {
        const runner = ds.createQueryRunner();
        await new CreateAuditEvents1763769600500().up(runner).finally(() => runner.release());
      }
      orgs = Array.from({ length: ORGS }, () => randomUUID());
      agents = Array.from({ length: ORGS * AGENTS_PER_ORG }, () => randomUUID());
      // 89.5 days back to now, so that every event is inside the 90-day window.
      const span = 89.5 * DAY;
      start = new Date(Date.now() - span);
      await load(ds, orgs, agents, start, span);
      await ds.query(`CREATE TABLE bench_ids (kind text, idx int, id uuid)`);
      await ds.query(`INSERT INTO bench_ids SELECT 'org', i, id FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, i)`, [orgs]);
      await ds.query(`INSERT INTO bench_ids SELECT 'agent', i, id FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, i)`, [agents]);
    }
    const agentOf = (org: number, i: number) => agents[org * AGENTS_PER_ORG + (i % AGENTS_PER_ORG)];
    const [{ count }] = await ds.query(`SELECT reltuples::bigint AS count FROM pg_class WHERE oid = 'audit_events'::regclass`);
    log(`about ${Number(count).toLocaleString('en')} events`);
    const [{ size }] = await ds.query(
      `SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) AS size FROM pg_inherits WHERE inhparent = 'audit_events'::regclass`,
    );
    log(`audit_events on disk: ${size}`);

    const service = new AuditService(new AuditRepository(ds), { retentionDays: 90 });
    const reader = (i: number): AuditReader => ({ orgId: orgs[i % ORGS], isRoot: false });
    const page = async (i: number, query: AuditQuery) => (await service.page(reader(i), query)).rows.length;

    await measure('first page, org only (limit 50)', (i) => page(i, {}));
    await measure('first page, org + action=token.denied (5%)', (i) => page(i, { action: 'token.denied' }));
    await measure('first page, org + action=credential.rotated (1%)', (i) => page(i, { action: 'credential.rotated' }));
    await measure('first page, org + agentId', (i) => page(i, { agentId: agentOf(i % ORGS, i * 7) }));
    await measure('first page, org + agentId + action=token.denied', (i) => page(i, { agentId: agentOf(i % ORGS, i * 7), action: 'token.denied' }));
    await measure('first page, org + outcome=failure', (i) => page(i, { outcome: 'failure' }));
    await measure('first page, org + from/to (one hour, 30 days ago)', (i) =>
      page(i, { from: new Date(Date.now() - 30 * DAY - i * 60_000).toISOString(), to: new Date(Date.now() - 30 * DAY + 3_600_000 - i * 60_000).toISOString() }),
    );

    // Deep: follow the cursor 1000 pages (50 000 events) into org 0 + token.issued.
    let cursor: string | undefined;
    const [followMs] = await timed(async () => {
      for (let p = 0; p < 1000; p++) cursor = (await service.page(reader(0), { action: 'token.issued', cursor })).nextCursor ?? undefined;
    });
    results.push({ what: 'following the cursor 1000 pages (org + action)', p50: (followMs / 1000).toFixed(2), p95: '', note: 'mean ms per page' });
    log(`followed 1000 pages in ${(followMs / 1000).toFixed(1)} s`);
    const deep = cursor!;
    await measure('page 1001, org + action (cursor 50 000 events deep)', () => page(0, { action: 'token.issued', cursor: deep }));
    // The middle of the set: a cursor at 45 days back.
    const middle = (i: number) =>
      encodeCursor({
        occurredAt: new Date(Date.now() - 45 * DAY - i * 1000).toISOString().replace('Z', '000Z'),
        eventId: 'ffffffff-ffff-4fff-bfff-ffffffffffff',
      });
    await measure('page in the middle of the set (45 days back), org', (i) => page(i, { cursor: middle(i) }));
    await measure('page in the middle of the set, org + agentId', (i) => page(i, { agentId: agentOf(i % ORGS, i), cursor: middle(i) }));

    if (args.explain) {
      const from = new Date(Date.now() - 90 * DAY).toISOString();
      const cols = `event_id, occurred_at`;
      console.log('\n-- first page, org + action');
      await explain(
        ds,
        `SELECT ${cols} FROM audit_events WHERE org_id = $1 AND action = $2 AND occurred_at >= $3 ORDER BY occurred_at DESC, event_id DESC LIMIT 51`,
        [orgs[0], 'token.denied', from],
      );
      console.log('\n-- middle page, org + agent');
      const at = new Date(Date.now() - 45 * DAY).toISOString();
      await explain(
        ds,
        `SELECT ${cols} FROM audit_events WHERE org_id = $1 AND agent_id = $2 AND occurred_at >= $3 AND occurred_at <= $4 AND (occurred_at, event_id) < ($4::timestamptz, $5::uuid) ORDER BY occurred_at DESC, event_id DESC LIMIT 51`,
        [orgs[0], agentOf(0, 0), from, at, 'ffffffff-ffff-4fff-bfff-ffffffffffff'],
      );
    }

    // Export: stream 100 000 events of one org.
    const [exportMs, exported] = await timed(async () => {
      let n = 0;
      for await (const e of service.export(reader(1), {})) {
        JSON.stringify(e);
        if (++n >= 100_000) break;
      }
      return n;
    });
    results.push({ what: 'export stream (keyset chunks of 1000)', p50: '', p95: '', note: `${Math.round((exported / exportMs) * 1000)} events/s` });
    log(`export: ${exported} events in ${exportMs.toFixed(0)} ms`);

    // The writer: 20 000 writes with 50, then 500, in flight at a time, as concurrent requests would.
    const writer = new AuditWriter(new AuditRepository(ds), quiet);
    const written: string[] = [];
    for (const concurrency of [50, 500]) {
      const latencies: number[] = [];
      const [writeMs] = await timed(async () => {
        let next = 0;
        const worker = async () => {
          while (next < 20_000) {
            next++;
            const [ms, event] = await timed(() =>
              writer.write({
                orgId: orgs[0],
                actor: { type: 'client', id: agents[0] },
                action: 'token.issued',
                target: { type: 'token', id: randomUUID() },
                outcome: 'success',
                requestId: randomUUID(),
                ip: '10.0.0.1',
                userAgent: 'bench',
                details: { scope: 'orders:read', aud: 'https://orders.example', kid: 'bench-kid' },
              }),
            );
            latencies.push(ms);
            if (written.length < 100) written.push(event.eventId);
          }
        };
        await Promise.all(Array.from({ length: concurrency }, worker));
      });
      latencies.sort((a, b) => a - b);
      results.push({
        what: `AuditWriter.write, ${concurrency} concurrent callers`,
        p50: percentile(latencies, 50).toFixed(2),
        p95: percentile(latencies, 95).toFixed(2),
        note: `${Math.round((20_000 / writeMs) * 1000)} events/s`,
      });
      log(`writer, ${concurrency} at a time: 20000 events in ${writeMs.toFixed(0)} ms`);
    }

    // GET /audit/{eventId}: an id of the writer's (UUIDv7, its day known) and a loaded one (v4).
    await measure('one event by id (UUIDv7 from the writer)', async (i) => ((await service.get(reader(0), written[i % written.length])) ? 1 : 0));
    const loadedIds: string[] = (
      await ds.query(`SELECT event_id FROM audit_events WHERE org_id = $1 AND occurred_at < now() - interval '40 days' LIMIT 100`, [orgs[0]])
    ).map((r: { event_id: string }) => r.event_id);
    await measure('one event by id (UUIDv4, every partition probed)', async (i) => ((await service.get(reader(0), loadedIds[i % loadedIds.length])) ? 1 : 0));

    // Purge, on clocks on which one more day has left the window each time: the oldest loaded
    // day (a part of a day after a fresh load), then the next, a whole day.
    const repo = new AuditRepository(ds);
    const oldest = Date.parse(`${(await repo.listPartitions())[0].day}T00:00:00Z`);
    for (const days of [1, 2]) {
      const day = oldest + (days - 1) * DAY;
      const [{ n: rowsInDay }] = await ds.query(`SELECT count(*)::int AS n FROM audit_events WHERE occurred_at >= $1 AND occurred_at < $2`, [
        new Date(day).toISOString(),
        new Date(day + DAY).toISOString(),
      ]);
      const purgeNow = new Date(day + DAY + 90 * DAY + 60_000);
      const job = new AuditMaintenance(ds, repo, writer, quiet, { retentionDays: 90, now: () => purgeNow });
      const [purgeMs, purged] = await timed(() => job.run());
      results.push({
        what: `retention run dropping one day (${rowsInDay} events)`,
        p50: purgeMs.toFixed(1),
        p95: '',
        note: `${purged.dropped.join(', ')}; run() in ms`,
      });
      log(`purge: ${purged.dropped.join(', ')} with ${rowsInDay} events in ${purgeMs.toFixed(1)} ms`);
    }
    await writer.close();

    console.log(
      `\n${Number(count).toLocaleString('en')} events, ${ORGS} orgs, ${ORGS * AGENTS_PER_ORG} agents, 90 days; ${RUNS} runs per line; PostgreSQL ${(await ds.query('SHOW server_version'))[0].server_version}\n`,
    );
    const width = Math.max(...results.map((r) => r.what.length));
    console.log(`${'measure'.padEnd(width)}  ${'p50 ms'.padStart(9)}  ${'p95 ms'.padStart(9)}  note`);
    for (const r of results) console.log(`${r.what.padEnd(width)}  ${r.p50.padStart(9)}  ${r.p95.padStart(9)}  ${r.note}`);
  } finally {
    if (ds.isInitialized) await ds.destroy();
    if (!args.keep) await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
  }
}

await main();
