import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { generateSecret } from '../src/credentials/secrets.ts';
import { isRunning } from '../src/db/embedded.ts';
import { assertNoSecretsInLogs, freshDatabase, type TestDatabase } from './helpers/database.ts';
import { describeOnPostgres } from './helpers/postgres-only.ts';
import { eventually } from './helpers/eventually.ts';
import { agentWithSecret, createOrg } from './factories.ts';

// WORKERS=2 as an operator runs it: `node src/main.ts` (what `npm start` runs), a cluster of two
// workers on one port and one PostgreSQL database, over real HTTP. Which worker answered a
// request is read from its debug line ("request", with the X-Request-Id we sent and the pid of
// the process that wrote it): nothing about the worker reaches a client.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// A cluster's workers each start a whole instance; on a loaded 2-core machine that takes a while.
const START_LIMIT_MS = 90_000;
const TEST_TIMEOUT_MS = 180_000;
const MIGRATIONS = readdirSync(join(ROOT, 'migrations')).filter((f) => /^\d+-\w+\.ts$/.test(f)).length;

interface LogRecord {
  msg: string;
  pid?: number;
  [field: string]: unknown;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Started {
  child: ChildProcess;
  url: string;
  stdout: string[];
  stderr: string[];
  exited: Promise<Exit>;
  operator: { clientId: string; clientSecret: string };
  /** Every worker pid seen, so that a failed test leaves none behind. */
  seen: Set<number>;
  records(): LogRecord[];
}

const started: Started[] = [];
/** The KEY_ENCRYPTION_KEY of each test database, the same for every start on it. */
const keys = new Map<string, string>();

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `node src/main.ts` on `db` (none: the embedded database), on a port of its own. */
async function start(db: TestDatabase | undefined, extra: Record<string, string> = {}, port?: number): Promise<Started> {
  port ??= await freePort();
  const operator = { clientId: randomUUID(), clientSecret: generateSecret(randomUUID()) };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WORKERS: '2',
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    HOST: '127.0.0.1',
    // A free port, never one another process of this machine holds; the primary logs where.
    METRICS_PORT: '0',
    LOG_LEVEL: 'debug',
    BCRYPT_COST: '4',
    DATABASE_POOL_SIZE: '3',
    BOOTSTRAP_ADMIN_CLIENT_ID: operator.clientId,
    BOOTSTRAP_ADMIN_CLIENT_SECRET: operator.clientSecret,
    ...extra,
  };
  delete env.DATABASE_URL;
  delete env.KEY_ENCRYPTION_KEY;
  if (db) {
    if (!keys.has(db.url)) keys.set(db.url, randomBytes(32).toString('base64'));
    Object.assign(env, { DATABASE_URL: db.url, KEY_ENCRYPTION_KEY: extra.KEY_ENCRYPTION_KEY ?? keys.get(db.url) });
  }
  // The pinned runtime that runs this suite, with the flags of `npm start`.
  const child = spawn(process.execPath, ['--max-semi-space-size=16', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => stdout.push(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const records = () =>
    stdout
      .join('')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogRecord);
  const s: Started = { child, url: `http://127.0.0.1:${port}`, stdout, stderr, exited, operator, seen: new Set(), records };
  started.push(s);
  return s;
}

/** Waits for the primary's "every worker listens", and returns the workers' pids. */
async function listening(s: Started): Promise<number[]> {
  await eventually(() => s.child.exitCode !== null || s.records().some((r) => r.msg === 'every worker listens'), { timeoutMs: START_LIMIT_MS }).catch(() => {});
  if (!s.records().some((r) => r.msg === 'every worker listens')) {
    throw new Error(`the cluster did not start; stdout:\n${s.stdout.join('')}\nstderr:\n${s.stderr.join('')}`);
  }
  const pids = workerPids(s);
  pids.forEach((pid) => s.seen.add(pid));
  return pids;
}

/** The live child processes of the primary: its workers. */
function workerPids(s: Started): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === s.child.pid && state !== 'Z') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out.sort((x, y) => x - y);
}

interface Answer {
  status: number;
  body: any;
  /** The worker that answered (from its "request" log line). */
  pid: number;
}

/** One request on a connection of its own (so that the primary hands it to the next worker). */
async function send(
  s: Started,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; form?: Record<string, string> } = {},
): Promise<Answer> {
  const requestId = randomUUID();
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  const headers: Record<string, string> = { 'x-request-id': requestId, connection: 'close', ...options.headers };
  if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = httpRequest(`${s.url}${path}`, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
  let pid: number | undefined;
  // The line is written when the answer has been sent: it may come just after.
  await eventually(() => (pid = s.records().find((r) => r.msg === 'request' && r.requestId === requestId)?.pid) !== undefined);
  return { status, body: text.startsWith('{') ? JSON.parse(text) : text, pid: pid! };
}

/** Sends `request` on new connections until worker `pid` answers it (each must be safe to repeat). */
async function onWorker(pid: number, request: () => Promise<Answer>): Promise<Answer> {
  let answer: Answer | undefined;
  await eventually(async () => (answer = await request()).pid === pid, { everyMs: 1 });
  return answer!;
}

const basic = (clientId: string, clientSecret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;

/** The value of one series of the primary's GET /metrics. */
async function metric(s: Started, series: string): Promise<number | undefined> {
  const url = s.records().find((r) => r.msg === 'metrics listening')!.url as string;
  const text = await (await fetch(url)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function query<T>(db: TestDatabase, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Kills whatever of `s` still runs, and checks that its logs leaked nothing. */
async function cleanUp(s: Started): Promise<void> {
  for (const pid of [s.child.pid!, ...workerPids(s), ...s.seen, ...pidsInLogs(s)]) {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  }
  await s.exited;
  assertNoSecretsInLogs(s.stdout.join('').split('\n'));
}

/** Every process that wrote a line: the primary and each worker it started. */
function pidsInLogs(s: Started): number[] {
  return [...new Set(s.records().map((r) => r.pid!))].filter((pid) => pid !== undefined);
}

afterEach(async () => {
  for (const s of started.splice(0)) await cleanUp(s);
});

describeOnPostgres('WORKERS=2 on a brand-new database', 'the embedded database serves one process', () => {
  let db: TestDatabase;
  let s: Started;
  let workers: number[];
  // One cluster for the tests of this block (they run in any order), stopped after the last.
  beforeAll(async () => {
    db = await freshDatabase();
    s = await start(db);
    started.splice(started.indexOf(s), 1);
    await listening(s);
  }, TEST_TIMEOUT_MS);
  afterAll(async () => {
    await cleanUp(s);
    await db.drop();
  });
  // Two workers that listen (after a test that killed one, its replacement).
  beforeEach(async () => {
    await eventually(
      () => {
        workers = workerPids(s);
        return workers.length === 2 && workers.every((pid) => s.records().some((r) => r.msg === 'agent-idp listening' && r.pid === pid));
      },
      { timeoutMs: START_LIMIT_MS },
    );
    workers.forEach((pid) => s.seen.add(pid));
  }, TEST_TIMEOUT_MS);

  it(
    'starts two workers together: one migrates and creates the keys and the operator, both hold a lease, the primary binds METRICS_PORT alone',
    async () => {
      expect(workers).toHaveLength(2);
      expect(workers).not.toContain(s.child.pid);
      const records = s.records();
      const listeningPids = records.filter((r) => r.msg === 'agent-idp listening').map((r) => r.pid);
      expect(new Set(listeningPids).size).toBeGreaterThanOrEqual(2);
      expect(records.filter((r) => r.msg === 'generated the first signing key')).toHaveLength(1);
      expect(records.filter((r) => r.msg === 'created the bootstrap operator agent')).toHaveLength(1);
      // Only the primary listens for the metrics; no worker does.
      expect(records.filter((r) => r.msg === 'metrics listening').map((r) => r.pid)).toEqual([s.child.pid]);

      expect(await query(db, 'SELECT status, count(*)::int AS n FROM signing_keys GROUP BY status ORDER BY status')).toEqual([
        { status: 'active', n: 1 },
        { status: 'next', n: 1 },
      ]);
      expect(await query(db, 'SELECT count(*)::int AS n FROM migrations')).toEqual([{ n: MIGRATIONS }]);
      expect(await query(db, 'SELECT count(*)::int AS n FROM agents WHERE id = $1', [s.operator.clientId])).toEqual([{ n: 1 }]);
      // Each worker is a whole instance with its own coherence lease (a killed one's runs out).
      await eventually(
        async () => (await query<{ n: number }>(db, 'SELECT count(*)::int AS n FROM agent_idp_instances WHERE lease_until > clock_timestamp()'))[0].n === 2,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses a second cluster whose KEY_ENCRYPTION_KEY is not the one of the keys: one line, exit 1, whatever the number of workers',
    async () => {
      const wrong = await start(db, { KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
      expect(await wrong.exited).toEqual({ code: 1, signal: null });
      expect(wrong.stderr.join('')).toMatch(
        /^agent-idp: KEY_ENCRYPTION_KEY does not match the key that encrypted signing key [\w-]+ \(encryption key id \w+, configured \w+\)\n$/,
      );
      expect(pidsInLogs(wrong).filter(isRunning)).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'hands new connections to both workers',
    async () => {
      const answered = new Set<number>();
      await eventually(async () => {
        const { status, pid } = await send(s, 'GET', '/healthz');
        expect(status).toBe(200);
        answered.add(pid);
        return answered.size === 2;
      });
      expect([...answered].sort((x, y) => x - y)).toEqual(workers);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'honours on one worker a revocation made through the other, after that one had seen the token active',
    async () => {
      const org = await createOrg({ url: s.url, operator: s.operator });
      const agent = await agentWithSecret({ url: s.url }, org.token);
      const auth = { authorization: basic(agent.clientId, agent.clientSecret) };
      const [a, b] = workers;
      const issued = await onWorker(a, () => send(s, 'POST', '/token', { headers: auth, form: { grant_type: 'client_credentials' } }));
      expect(issued.status).toBe(200);
      const token = issued.body.access_token as string;
      const introspect = () => send(s, 'POST', '/token/introspect', { headers: auth, form: { token } });

      // Worker b checks the token first (and may now answer from memory).
      expect((await onWorker(b, introspect)).body).toMatchObject({ active: true, client_id: agent.clientId });
      expect((await onWorker(a, () => send(s, 'POST', '/token/revoke', { headers: auth, form: { token } }))).status).toBe(200);
      expect((await onWorker(b, introspect)).body).toEqual({ active: false });
      expect((await onWorker(a, introspect)).body).toEqual({ active: false });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "serves on the primary's METRICS_PORT the sum of both workers' counters",
    async () => {
      const org = await createOrg({ url: s.url, operator: s.operator });
      const agent = await agentWithSecret({ url: s.url }, org.token);
      const series = 'agent_idp_tokens_issued_total{grant="client_credentials"}';
      // Nothing else issues tokens meanwhile; wait for the counters to have taken in the set-up's.
      let before = -1;
      await eventually(async () => {
        const now = await metric(s, series);
        const same = now === before;
        before = now!;
        return same;
      });
      const perWorker = new Map<number, number>();
      await eventually(async () => {
        const { status, pid } = await send(s, 'POST', '/token', {
          headers: { authorization: basic(agent.clientId, agent.clientSecret) },
          form: { grant_type: 'client_credentials' },
        });
        expect(status).toBe(200);
        perWorker.set(pid, (perWorker.get(pid) ?? 0) + 1);
        return perWorker.size === 2 && [...perWorker.values()].every((n) => n >= 2);
      });
      const issued = [...perWorker.values()].reduce((x, y) => x + y, 0);
      // Each worker counts only what it issued: a scrape of either alone would fall short.
      await eventually(async () => (await metric(s, series)) === before + issued);
      expect(await metric(s, 'agent_idp_cluster_workers')).toBe(2);
      // Gauges aggregate as they declare: 1 only while every worker holds its lease.
      expect(await metric(s, 'agent_idp_coherence_lease_ok')).toBe(1);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'replaces a worker that is killed, and logs it',
    async () => {
      const [victim, survivor] = workers;
      const restartsBefore = (await metric(s, 'agent_idp_cluster_worker_restarts_total'))!;
      process.kill(victim, 'SIGKILL');
      let replacement: number | undefined;
      await eventually(
        () => {
          const now = workerPids(s);
          replacement = now.find((pid) => pid !== survivor && pid !== victim);
          return now.length === 2 && replacement !== undefined && s.records().some((r) => r.msg === 'agent-idp listening' && r.pid === replacement);
        },
        { timeoutMs: START_LIMIT_MS },
      );
      s.seen.add(replacement!);
      expect(s.records().filter((r) => r.msg === 'a worker exited unexpectedly; starting another' && r.worker === victim)).toEqual([
        expect.objectContaining({ pid: s.child.pid, worker: victim, signal: 'SIGKILL', code: null }),
      ]);
      expect((await onWorker(replacement!, () => send(s, 'GET', '/readyz'))).status).toBe(200);
      expect(await metric(s, 'agent_idp_cluster_worker_restarts_total')).toBe(restartsBefore + 1);
      await eventually(async () => (await metric(s, 'agent_idp_cluster_workers')) === 2);
    },
    TEST_TIMEOUT_MS,
  );
});

describeOnPostgres('stopping WORKERS=2', 'the embedded database serves one process', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db.drop());

  it(
    'SIGTERM: every worker drains (/readyz 503, still serving); a second SIGTERM ends the delay; all exit, the primary with 0, the port released',
    async () => {
      const s = await start(db, { SHUTDOWN_DELAY_SECONDS: '300' });
      const workers = await listening(s);
      const port = Number(new URL(s.url).port);

      s.child.kill('SIGTERM');
      const draining = new Set<number>();
      await eventually(async () => {
        const { status, pid } = await send(s, 'GET', '/readyz');
        if (status === 503) draining.add(pid);
        return draining.size === 2;
      });
      for (const pid of workers) {
        expect((await onWorker(pid, () => send(s, 'GET', '/.well-known/jwks.json'))).status).toBe(200);
      }

      s.child.kill('SIGTERM');
      expect(await s.exited).toEqual({ code: 0, signal: null });
      const records = s.records();
      expect(
        records
          .filter((r) => r.msg === 'second signal: closing without waiting for the shutdown delay')
          .map((r) => r.pid)
          .sort((x, y) => x! - y!),
      ).toEqual(workers);
      expect(
        records
          .filter((r) => r.msg === 'stopped')
          .map((r) => r.pid)
          .sort((x, y) => x! - y!),
      ).toEqual(workers);
      expect(records.find((r) => r.msg === 'every worker stopped')).toMatchObject({ pid: s.child.pid, drainFailures: 0 });
      expect(workers.filter(isRunning)).toEqual([]);
      expect(await portIsFree(port)).toBe(true);
      // Each lease given back as its worker stopped.
      expect(await query(db, 'SELECT count(*)::int AS n FROM agent_idp_instances WHERE lease_until > clock_timestamp()')).toEqual([{ n: 0 }]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'gives up with exit 1 and one line when the workers it starts again keep failing (the database refuses new connections)',
    async () => {
      const s = await start(db);
      const [victim, survivor] = await listening(s);
      const name = new URL(db.url).pathname.slice(1);
      const admin = { ...db, url: process.env.DATABASE_URL! };
      await query(admin, `ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      try {
        process.kill(victim, 'SIGKILL');
        let timer: NodeJS.Timeout | undefined;
        const exit = await Promise.race([s.exited, new Promise<'waiting'>((resolve) => (timer = setTimeout(() => resolve('waiting'), 150_000)))]);
        clearTimeout(timer);
        expect(exit).toEqual({ code: 1, signal: null });
      } finally {
        await query(admin, `ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      }
      expect(s.stderr.join('')).toMatch(/^agent-idp: workers keep exiting right after they start \(6 in a row; the last: could not start: .+\)\n$/);
      const restarts = s.records().filter((r) => r.msg === 'a worker exited unexpectedly; starting another');
      // Each wait twice as long as the one before. (The killed worker's own exit counts as quick
      // too, unless it had already served for 10 s on a slow machine: then it is restarted at once.)
      const waits = restarts.map((r) => r.restartInMs);
      expect(waits.slice(-5)).toEqual([500, 1000, 2000, 4000, 8000]);
      expect(waits.slice(0, -5)).toEqual(waits.length === 6 ? [0] : []);
      // The worker that still served was stopped, not left behind.
      expect(isRunning(survivor)).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );
});

describe('WORKERS=2 refused at start', () => {
  it('without DATABASE_URL (the embedded database): exit 1 and one line saying why', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'aidp-workers-'));
    const s = await start(undefined, { DATA_DIR: dataDir });
    expect(await s.exited).toEqual({ code: 1, signal: null });
    expect(s.stderr.join('')).toBe(
      'agent-idp: configuration error: WORKERS: 2 needs PostgreSQL: the embedded database (DATABASE_URL unset) serves one process; set DATABASE_URL, or WORKERS=1\n',
    );
    expect(s.stdout.join('')).toBe('');
    expect(readdirSync(dataDir)).toEqual([]);
    rmSync(dataDir, { recursive: true, force: true });
  });

  describeOnPostgres('on a port already in use', 'the embedded database serves one process', () => {
    let db: TestDatabase;
    let holder: Server;
    let port: number;
    beforeAll(async () => {
      db = await freshDatabase();
      holder = createServer();
      await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
      port = (holder.address() as { port: number }).port;
    });
    afterAll(async () => {
      await new Promise((resolve) => holder.close(resolve));
      await db.drop();
    });

    it(
      'is one line on stderr naming the port (not one per worker), exit 1, no worker left',
      async () => {
        const s = await start(db, {}, port);
        expect(await s.exited).toEqual({ code: 1, signal: null });
        expect(s.stderr.join('')).toBe(`agent-idp: port ${port} is already in use (PORT=${port}, HOST=127.0.0.1)\n`);
        expect(s.records().some((r) => r.msg === 'agent-idp listening')).toBe(false);
        const workers = pidsInLogs(s).filter((pid) => pid !== s.child.pid);
        expect(workers.length).toBeGreaterThan(0);
        expect(workers.filter(isRunning)).toEqual([]);
      },
      TEST_TIMEOUT_MS,
    );
  });
});
