import { parseArgs } from 'node:util';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { generateSecret } from '../src/credentials/secrets.ts';
import { formatProfile, summarizeProfile, type ProfileSummary } from './profile.ts';
import {
  BENCH_SCOPE,
  FORM,
  JWT_RESOURCE,
  OPAQUE_RESOURCE,
  allCpus,
  basic,
  hasTaskset,
  processCpuMs,
  processRssMb,
  setAffinity,
  pinned,
  merge,
  newHistogram,
  percentile,
  type LatencyHistogram,
  type LoadJob,
  type LoadMessage,
  type LoadResult,
  type PoolEntry,
  type RequestTemplate,
  type ServerReply,
  type ServerRequest,
} from './lib.ts';

// `npm run bench`: agent-idp side by side with a bare oidc-provider (bench/reference-server.ts).
// Each server runs in a process of its own, both pinned to the same core; the load generator
// (bench/load.ts, autocannon) runs in a third process on another core. For every scenario:
// req/s, p50, p99, non-2xx, server CPU ms per request, RSS, and agent-idp / reference from the
// same run. Results are printed and written to bench/results/<timestamp>.json.
// See bench/README.md.

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH_DIR);

/**
 * The Node flags of `npm start` (package.json), given to both servers: agent-idp runs as it
 * does in production, and the reference on the same runtime settings.
 */
const SERVER_NODE_FLAGS: string[] = (() => {
  const start: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start;
  return start.split(/\s+/).filter((word) => word.startsWith('--'));
})();
const RESULTS_DIR = join(BENCH_DIR, 'results');

const SCENARIOS = ['jwks', 'token', 'introspect', 'agents', 'cold', 'mixed', 'soak'] as const;
type Scenario = (typeof SCENARIOS)[number];
const DEFAULT_SCENARIOS: Scenario[] = ['jwks', 'token', 'introspect', 'agents', 'cold', 'mixed'];
const ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

const USAGE = `usage: npm run bench -- [options]

  --scenario NAME     run only this scenario (repeatable or comma-separated):
                      ${SCENARIOS.join(', ')} (default: all but soak)
  --duration SECONDS  measured seconds per scenario and server (default 20, at most 60)
  --quick             5 s per scenario, 1 s warm-up (a smoke run)
  --connections N     concurrent connections of the load generator (default 32)
  --alg ALG           signing algorithm of a warm /token run (repeatable; default RS256 and
                      ES256); the first one signs in every other scenario
  --soak-minutes M    length of the soak scenario (default 10, at most 55)
  --mixed-agents N    agents of the mixed scenario (default 10000)
  --mixed-bcrypt-cost C  bcrypt cost of the mixed scenario's secrets (default 4, see README)
  --profile           CPU-profile agent-idp during each measured window (.cpuprofile files)
  --no-pin            do not pin processes to cores
  -h, --help

  DATABASE_URL set: agent-idp runs on a new database of that PostgreSQL server (dropped at
  the end); unset: on the embedded PGlite in a temporary DATA_DIR.`;

// ---------------------------------------------------------------------------------------------
// options

interface Options {
  scenarios: Scenario[];
  duration: number;
  warmup: number;
  connections: number;
  algs: string[];
  soakMinutes: number;
  mixedAgents: number;
  mixedBcryptCost: number;
  profile: boolean;
  pin: boolean;
  quick: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', multiple: true },
      duration: { type: 'string' },
      quick: { type: 'boolean', default: false },
      connections: { type: 'string' },
      alg: { type: 'string', multiple: true },
      'soak-minutes': { type: 'string' },
      'mixed-agents': { type: 'string' },
      'mixed-bcrypt-cost': { type: 'string' },
      profile: { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const number = (name: string, raw: string | undefined, fallback: number, min: number, max: number) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  const scenarios = (values.scenario ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario "${s}" (known: ${SCENARIOS.join(', ')})`);
  }
  const algs = (values.alg ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const a of algs) if (!ALGS.includes(a)) throw new Error(`--alg must be one of ${ALGS.join(', ')}, got "${a}"`);
  const quick = values.quick === true;
  // The issue bounds a scenario to about a minute; longer runs are the soak's job.
  const duration = number('duration', values.duration, quick ? 5 : 20, 1, 60);
  return {
    scenarios: scenarios.length ? (SCENARIOS.filter((s) => scenarios.includes(s)) as Scenario[]) : DEFAULT_SCENARIOS,
    duration,
    warmup: quick ? 1 : Math.min(3, Math.max(1, Math.round(duration / 5))),
    connections: number('connections', values.connections, 32, 1, 10_000),
    algs: algs.length ? [...new Set(algs)] : ['RS256', 'ES256'],
    // Below the access tokens' hour: the soak reuses one management and one introspected token.
    soakMinutes: number('soak-minutes', values['soak-minutes'], 10, 0.5, 55),
    mixedAgents: number('mixed-agents', values['mixed-agents'], 10_000, 100, 1_000_000),
    mixedBcryptCost: number('mixed-bcrypt-cost', values['mixed-bcrypt-cost'], 4, 4, 15),
    profile: values.profile === true,
    pin: values['no-pin'] !== true,
    quick,
  };
}

// ---------------------------------------------------------------------------------------------
// processes

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cleanups: (() => Promise<void> | void)[] = [];

interface Pinning {
  servers: string | undefined;
  load: string | undefined;
}

interface ServerHandle {
  name: 'agent-idp' | 'reference';
  child: ChildProcess;
  pid: number;
  url: string;
  cores: number;
  database: string;
  logFile: string;
  request(message: ServerRequest): Promise<ServerReply>;
  stop(): Promise<void>;
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function startServer(
  name: ServerHandle['name'],
  script: string,
  env: Record<string, string | undefined>,
  cpusList: string | undefined,
  logFile: string,
  nodeArgs: string[] = [],
): Promise<ServerHandle> {
  const fd = openSync(logFile, 'a');
  const [command, args] = pinned(cpusList, process.execPath, [...nodeArgs, script]);
  const child = spawn(command, args, { cwd: ROOT, env: env as NodeJS.ProcessEnv, stdio: ['ignore', fd, fd, 'ipc'] });
  closeSync(fd);
  const waiting = new Map<number, (reply: ServerReply) => void>();
  let nextId = 1;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const ready = await new Promise<Extract<ServerReply, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 180 s; see ${logFile}`)), 180_000);
    child.on('message', (reply: ServerReply) => {
      if (reply.type === 'ready') {
        clearTimeout(timer);
        resolve(reply);
      } else if ('id' in reply && reply.id !== undefined) {
        waiting.get(reply.id)?.(reply);
        waiting.delete(reply.id);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}) before it was ready:\n${tail(logFile)}`));
    });
  });

  let stopped = false;
  const handle: ServerHandle = {
    name,
    child,
    pid: child.pid!,
    url: ready.url,
    cores: ready.cores,
    database: ready.database,
    logFile,
    request(message) {
      const id = nextId++;
      const withId = { ...message, id } as ServerRequest;
      return new Promise((resolve, reject) => {
        waiting.set(id, (reply) => (reply.type === 'failed' ? reject(new Error(`${name}: ${reply.message}`)) : resolve(reply)));
        void exited.then(() => reject(new Error(`${name} exited:\n${tail(logFile)}`)));
        child.send(withId);
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)]);
      if (!done) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  cleanups.push(() => handle.stop());
  return handle;
}

function runLoad(job: LoadJob, pinning: Pinning, onMeasureStart: () => void | Promise<void>): Promise<LoadResult> {
  const [command, args] = pinned(pinning.load, process.execPath, [join(BENCH_DIR, 'load.ts')]);
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  cleanups.push(stop);
  return new Promise((resolve, reject) => {
    let settled = false;
    child.once('exit', () => cleanups.splice(cleanups.indexOf(stop), 1));
    child.on('message', (message: LoadMessage) => {
      if (message.type === 'measure-start') void onMeasureStart();
      else if (message.type === 'result') {
        settled = true;
        resolve(message.result);
      } else if (message.type === 'error') {
        settled = true;
        reject(new Error(`load generator: ${message.message}`));
      }
    });
    child.once('exit', (code) => {
      if (!settled) reject(new Error(`load generator exited with code ${code}`));
    });
    child.send(job);
  });
}

// ---------------------------------------------------------------------------------------------
// databases

interface BenchDatabase {
  env: Record<string, string>;
  description: string;
  /** Backend pids serving this database, to count their CPU time; absent when it runs inside agent-idp. */
  backendPids?: () => Promise<number[]>;
  drop(): Promise<void>;
}

async function benchDatabase(serverUrl: string | undefined): Promise<BenchDatabase> {
  if (!serverUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'agent-idp-bench-'));
    const embedded: BenchDatabase = {
      env: { DATA_DIR: dir },
      description: 'embedded PGlite (in the agent-idp process)',
      async drop() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
    cleanups.push(() => embedded.drop());
    return embedded;
  }
  const name = `aidp_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  const db: BenchDatabase = {
    env: { DATABASE_URL: url.toString(), KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') },
    description: `PostgreSQL ${url.host} (database ${name})`,
    async backendPids() {
      const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name]);
      return rows.map((r) => r.pid);
    },
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
  cleanups.push(() => db.drop());
  return db;
}

// ---------------------------------------------------------------------------------------------
// HTTP set-up (as an operator would do it, through the public API)

interface HttpResult {
  status: number;
  body: any;
}

async function http(
  base: string,
  method: string,
  path: string,
  options: { bearer?: string; basic?: [string, string]; json?: unknown; form?: Record<string, string> } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
  if (options.basic) headers.authorization = basic(...options.basic);
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  if (options.form) {
    headers['content-type'] = FORM;
    body = new URLSearchParams(options.form).toString();
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed };
}

async function accessToken(base: string, clientId: string, secret: string, params: Record<string, string> = {}): Promise<string> {
  const res = await http(base, 'POST', '/token', { basic: [clientId, secret], form: { grant_type: 'client_credentials', ...params } });
  if (res.status !== 200) throw new Error(`no token for ${clientId}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.access_token;
}

async function inParallel<T, R>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i], i);
      }
    }),
  );
  return results;
}

interface Fixtures {
  operatorToken: string;
  orgId: string;
  adminToken: string;
  warm: { clientId: string; clientSecret: string };
  rs: { clientId: string; clientSecret: string };
  /** A valid access token of the warm agent, for introspection. */
  token: string;
}

const TOKEN_BODY = new URLSearchParams({ grant_type: 'client_credentials', scope: BENCH_SCOPE }).toString();
const AGENT_BODY = { scopes: [BENCH_SCOPE], audiences: [JWT_RESOURCE] };

async function agentWithSecret(base: string, adminToken: string, body: Record<string, unknown>) {
  const agent = await http(base, 'POST', '/api/v1/agents', { bearer: adminToken, json: body });
  if (agent.status !== 201) throw new Error(`agent not created: ${agent.status} ${JSON.stringify(agent.body)}`);
  const credential = await http(base, 'POST', `/api/v1/agents/${agent.body.agentId}/credentials`, { bearer: adminToken, json: {} });
  if (credential.status !== 201) throw new Error(`credential not created: ${credential.status} ${JSON.stringify(credential.body)}`);
  return { clientId: agent.body.agentId as string, clientSecret: credential.body.clientSecret as string };
}

async function createOrg(base: string, operatorToken: string, name: string) {
  const org = await http(base, 'POST', '/api/v1/orgs', { bearer: operatorToken, json: { name } });
  if (org.status !== 201) throw new Error(`org not created: ${org.status} ${JSON.stringify(org.body)}`);
  return org.body as { orgId: string; admin: { clientId: string; clientSecret: string } };
}

async function setUp(idp: ServerHandle, operator: { clientId: string; clientSecret: string }): Promise<Fixtures> {
  const base = idp.url;
  const operatorToken = await accessToken(base, operator.clientId, operator.clientSecret, { resource: `${base}/api/v1` });
  const org = await createOrg(base, operatorToken, `bench-${randomBytes(4).toString('hex')}`);
  const adminToken = await accessToken(base, org.admin.clientId, org.admin.clientSecret, { resource: `${base}/api/v1` });
  const warm = await agentWithSecret(base, adminToken, { name: 'bench-warm', ...AGENT_BODY });
  const rs = await agentWithSecret(base, adminToken, { name: 'bench-resource-server', scopes: ['tokens:introspect'], audiences: [JWT_RESOURCE] });
  const token = await accessToken(base, warm.clientId, warm.clientSecret, { scope: BENCH_SCOPE });
  // A realistic page for the management listing: 40 more agents (no secrets, no bcrypt).
  await inParallel(
    Array.from({ length: 40 }, (_, i) => i),
    8,
    async (i) => {
      const res = await http(base, 'POST', '/api/v1/agents', { bearer: adminToken, json: { name: `bench-filler-${i}`, ...AGENT_BODY } });
      if (res.status !== 201) throw new Error(`agent not created: ${res.status}`);
    },
  );
  return { operatorToken, orgId: org.orgId, adminToken, warm, rs, token };
}

// ---------------------------------------------------------------------------------------------
// measurements

interface Measurement {
  server: 'agent-idp' | 'reference';
  /** Rounds the measurement was cut into (taken in turn with the other server's). */
  rounds: number;
  durationS: number;
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  cpuMsPerReq: number | null;
  /** Server CPU time over wall time (1 = one core busy all the time). */
  serverCpu: number | null;
  /** CPU of the PostgreSQL backends serving agent-idp's database (PostgreSQL mode only). */
  dbCpuMsPerReq: number | null;
  rssMbMax: number | null;
  rssMbEnd: number | null;
  rssSamples: { t: number; rssMb: number }[];
  /** CPU share of the load generator (1 = its whole core): near 1, the generator limits the figure. */
  loadCpu: number;
  profile?: { file: string; summary: ProfileSummary };
}

interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean | null;
}

interface ScenarioResult {
  scenario: string;
  label: string;
  alg: string;
  agentIdp: Measurement;
  reference?: Measurement;
  /** What the ratio is taken against. */
  baseline?: { label: string; rps: number };
  ratio?: number;
  /**
   * reference CPU ms/req ÷ agent-idp CPU ms/req (server processes only): the throughput ratio
   * the two would show if each had a core to itself. Steadier than `ratio` on a busy machine.
   */
  cpuRatio?: number;
  targets: Target[];
  notes: string[];
}

interface Phase {
  alg: string;
  idp: ServerHandle;
  ref: ServerHandle;
  db: BenchDatabase;
  fixtures: Fixtures;
  refSecrets: { client: string; rs: string };
  refOpaqueToken: string;
  /** RSS of each server once started and set up, before any load (MB). */
  idleRssMb: { agentIdp: number | null; reference: number | null };
  mixed?: { clientId: string; clientSecret: string }[];
}

interface Context {
  options: Options;
  pinning: Pinning;
  runId: string;
  profiles: string[];
  bcrypt?: { cost: number; medianMs: number; minMs: number; probesMs: number[]; serverCores: number; boundRps: number };
}

interface Load {
  server: ServerHandle;
  db: BenchDatabase | undefined;
  job: Omit<LoadJob, 'url' | 'serverPid'>;
}

interface Tally {
  rounds: number;
  durationS: number;
  requests: number;
  latency: LatencyHistogram;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  serverCpuMs: number | null;
  dbCpuMs: number | null;
  rss: { t: number; rssMb: number }[];
  loadCpuMs: number;
}

/** One load run against one server, with the CPU time of its database backends around it. */
async function runRound(ctx: Context, { server, db, job }: Load, onStart: () => void): Promise<LoadResult & { dbCpuMs: number | null }> {
  let dbBefore: Map<number, number> | undefined;
  const backendPids = db?.backendPids;
  const result = await runLoad({ ...job, url: server.url, serverPid: server.pid }, ctx.pinning, async () => {
    onStart();
    if (backendPids) {
      dbBefore = new Map();
      for (const pid of await backendPids()) dbBefore.set(pid, processCpuMs(pid) ?? 0);
    }
  });
  let dbCpuMs: number | null = null;
  if (backendPids && dbBefore) {
    dbCpuMs = 0;
    for (const pid of await backendPids()) {
      const now = processCpuMs(pid);
      if (now !== undefined) dbCpuMs += now - (dbBefore.get(pid) ?? 0);
    }
  }
  return { ...result, dbCpuMs };
}

/**
 * Measures each load for job.duration seconds in all. With two loads (agent-idp and the
 * reference), the time is cut into rounds taken in turn, A B B A A B B A, so that both see the
 * same share of whatever else the machine is doing; the warm-up precedes each one's first round.
 * A profile (of the first load's server) spans its rounds.
 */
async function measureAll(ctx: Context, loads: Load[], profileName?: string): Promise<Measurement[]> {
  const duration = loads[0].job.duration;
  const rounds = loads.length > 1 ? Math.max(1, Math.min(4, Math.floor(duration / 2.5))) : 1;
  const roundSeconds = rounds > 1 ? Math.max(1, Math.round(duration / rounds)) : duration;
  const tallies: Tally[] = loads.map(() => ({
    rounds: 0,
    durationS: 0,
    requests: 0,
    latency: newHistogram(),
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    statusCodes: {},
    serverCpuMs: 0,
    dbCpuMs: null,
    rss: [],
    loadCpuMs: 0,
  }));
  let profiling: Promise<unknown> | undefined;
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? loads.map((_, i) => i) : loads.map((_, i) => loads.length - 1 - i);
    for (const i of order) {
      const load = loads[i];
      const job = { ...load.job, duration: roundSeconds, warmup: r === 0 ? load.job.warmup : 0 };
      const result = await runRound(ctx, { ...load, job }, () => {
        if (profileName && i === 0 && !profiling) profiling = load.server.request({ type: 'profile-start', id: 0 });
      });
      const t = tallies[i];
      for (const sample of result.rss) t.rss.push({ t: round(t.durationS + sample.t, 1), rssMb: sample.rssMb });
      t.rounds++;
      t.durationS += result.durationS;
      t.requests += result.requests;
      merge(t.latency, result.latency);
      t.non2xx += result.non2xx;
      t.errors += result.errors;
      t.timeouts += result.timeouts;
      for (const [code, n] of Object.entries(result.statusCodes)) t.statusCodes[code] = (t.statusCodes[code] ?? 0) + n;
      t.serverCpuMs = result.serverCpuMs === undefined || t.serverCpuMs === null ? null : t.serverCpuMs + result.serverCpuMs;
      if (result.dbCpuMs !== null) t.dbCpuMs = (t.dbCpuMs ?? 0) + result.dbCpuMs;
      t.loadCpuMs += result.loadCpuMs;
    }
  }
  let profile: Measurement['profile'];
  if (profileName && profiling) {
    await profiling;
    const file = join(RESULTS_DIR, `${ctx.runId}-${profileName}.cpuprofile`);
    await loads[0].server.request({ type: 'profile-stop', id: 0, file });
    const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), 15);
    profile = { file: relative(ROOT, file), summary };
    ctx.profiles.push(`${profileName}\n${formatProfile(summary)}`);
  }
  return tallies.map((t, i) => {
    const rssValues = t.rss.map((s) => s.rssMb);
    const ok = t.requests || 1;
    return {
      server: loads[i].server.name,
      rounds: t.rounds,
      durationS: round(t.durationS),
      requests: t.requests,
      rps: round(t.requests / t.durationS),
      p50: round(percentile(t.latency, 50)),
      p90: round(percentile(t.latency, 90)),
      p99: round(percentile(t.latency, 99)),
      max: round(t.latency.maxMs),
      non2xx: t.non2xx,
      errors: t.errors,
      timeouts: t.timeouts,
      statusCodes: t.statusCodes,
      cpuMsPerReq: t.serverCpuMs === null ? null : round(t.serverCpuMs / ok, 3),
      serverCpu: t.serverCpuMs === null ? null : round(t.serverCpuMs / 1000 / t.durationS, 2),
      dbCpuMsPerReq: t.dbCpuMs === null ? null : round(t.dbCpuMs / ok, 3),
      rssMbMax: rssValues.length ? Math.max(...rssValues) : null,
      rssMbEnd: rssValues.length ? rssValues[rssValues.length - 1] : null,
      rssSamples: t.rss,
      loadCpu: round(t.loadCpuMs / 1000 / t.durationS),
      ...(i === 0 && profile ? { profile } : {}),
    };
  });
}

async function measure(
  ctx: Context,
  server: ServerHandle,
  db: BenchDatabase | undefined,
  job: Omit<LoadJob, 'url' | 'serverPid'>,
  profileName?: string,
): Promise<Measurement> {
  const [m] = await measureAll(ctx, [{ server, db, job }], profileName);
  return m;
}

function describe(m: Measurement): string {
  const failures = m.non2xx + m.errors;
  return `${m.server}: ${m.rps} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms${failures ? `, ${failures} failed` : ''}, ${m.cpuMsPerReq ?? '?'} CPU ms/req`;
}

function cpuRatioOf(agentIdp: Measurement, reference: Measurement): number | undefined {
  return agentIdp.cpuMsPerReq && reference.cpuMsPerReq ? reference.cpuMsPerReq / agentIdp.cpuMsPerReq : undefined;
}

function ratioTarget(name: string, ratio: number, cpuRatio: number | undefined, goal = 0.8): Target {
  const cpu = cpuRatio === undefined ? '' : ` (CPU-normalised ${round(cpuRatio)})`;
  return { name, goal: `≥ ${goal} × reference`, value: `${round(ratio)}${cpu}`, met: ratio >= goal };
}

function noFailures(m: Measurement): Target {
  const failed = m.non2xx + m.errors;
  return { name: 'every request answered 2xx', goal: '0 failed', value: String(failed), met: failed === 0 };
}

async function expect(what: string, check: () => Promise<boolean>): Promise<void> {
  if (!(await check())) throw new Error(`check failed: ${what}`);
}

function jwtHeader(token: string): { alg?: string; typ?: string } {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8'));
}

// ---- scenarios ------------------------------------------------------------------------------

async function jwksScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const job = {
    connections: ctx.options.connections,
    duration: ctx.options.duration,
    warmup: ctx.options.warmup,
    requests: [{ method: 'GET', path: '/.well-known/jwks.json' } as RequestTemplate],
  };
  const [a, b] = await Promise.all([http(phase.idp.url, 'GET', '/.well-known/jwks.json'), http(phase.ref.url, 'GET', '/.well-known/jwks.json')]);
  await expect('both servers publish a JWKS of as many keys', async () => a.status === 200 && b.status === 200 && a.body.keys.length === b.body.keys.length);
  const [agentIdp, reference] = await measureAll(
    ctx,
    [
      { server: phase.idp, db: phase.db, job },
      { server: phase.ref, db: undefined, job },
    ],
    ctx.options.profile ? `jwks-${phase.alg}` : undefined,
  );
  log(`jwks ${describe(agentIdp)}`);
  log(`jwks ${describe(reference)}`);
  const ratio = agentIdp.rps / reference.rps;
  const cpuRatio = cpuRatioOf(agentIdp, reference);
  return {
    scenario: 'jwks',
    label: 'JWKS',
    alg: phase.alg,
    agentIdp,
    reference,
    baseline: { label: 'reference JWKS', rps: reference.rps },
    ratio,
    cpuRatio,
    targets: [ratioTarget('JWKS req/s', ratio, cpuRatio), noFailures(agentIdp)],
    notes: [`${a.body.keys.length} published keys on both`],
  };
}

async function tokenScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const { warm } = phase.fixtures;
  const tokenRequest = (authorization: string): RequestTemplate => ({
    method: 'POST',
    path: '/token',
    headers: { authorization, 'content-type': FORM },
    body: TOKEN_BODY,
  });
  const job = (authorization: string) => ({
    connections: ctx.options.connections,
    duration: ctx.options.duration,
    warmup: ctx.options.warmup,
    requests: [tokenRequest(authorization)],
  });
  // One warm-up request each (the only bcrypt compare of agent-idp's run), checked.
  const mine = await accessToken(phase.idp.url, warm.clientId, warm.clientSecret, { scope: BENCH_SCOPE });
  const theirs = await accessToken(phase.ref.url, 'bench-client', phase.refSecrets.client, { scope: BENCH_SCOPE });
  await expect(
    `both sign ${phase.alg} JWT access tokens`,
    async () => jwtHeader(mine).alg === phase.alg && jwtHeader(theirs).alg === phase.alg && jwtHeader(theirs).typ === 'at+jwt',
  );
  const [agentIdp, reference] = await measureAll(
    ctx,
    [
      { server: phase.idp, db: phase.db, job: job(basic(warm.clientId, warm.clientSecret)) },
      { server: phase.ref, db: undefined, job: job(basic('bench-client', phase.refSecrets.client)) },
    ],
    ctx.options.profile ? `token-${phase.alg}` : undefined,
  );
  log(`token ${phase.alg} ${describe(agentIdp)}`);
  log(`token ${phase.alg} ${describe(reference)}`);
  const ratio = agentIdp.rps / reference.rps;
  const cpuRatio = cpuRatioOf(agentIdp, reference);
  return {
    scenario: 'token',
    label: `/token warm ${phase.alg}`,
    alg: phase.alg,
    agentIdp,
    reference,
    baseline: { label: `reference /token ${phase.alg}`, rps: reference.rps },
    ratio,
    cpuRatio,
    targets: [
      ratioTarget(`warm /token ${phase.alg} req/s`, ratio, cpuRatio),
      {
        name: `p99 of warm /token ${phase.alg} (${ctx.options.connections} connections)`,
        goal: '< 30 ms at 32 connections',
        value: `${agentIdp.p99} ms (reference ${reference.p99} ms)`,
        met: ctx.options.connections === 32 ? agentIdp.p99 < 30 : null,
      },
      noFailures(agentIdp),
    ],
    notes: [],
  };
}

async function introspectScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const { rs, token } = phase.fixtures;
  const mineBody = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
  const theirsBody = new URLSearchParams({ token: phase.refOpaqueToken, token_type_hint: 'access_token' }).toString();
  const check = async () => {
    const [a, b] = await Promise.all([
      http(phase.idp.url, 'POST', '/token/introspect', { basic: [rs.clientId, rs.clientSecret], form: { token, token_type_hint: 'access_token' } }),
      http(phase.ref.url, 'POST', '/token/introspect', {
        basic: ['bench-rs', phase.refSecrets.rs],
        form: { token: phase.refOpaqueToken, token_type_hint: 'access_token' },
      }),
    ]);
    return a.status === 200 && a.body.active === true && b.status === 200 && b.body.active === true;
  };
  await expect('both introspect their token as active', check);
  const job = (authorization: string, body: string) => ({
    connections: ctx.options.connections,
    duration: ctx.options.duration,
    warmup: ctx.options.warmup,
    requests: [{ method: 'POST', path: '/token/introspect', headers: { authorization, 'content-type': FORM }, body } as RequestTemplate],
  });
  const [agentIdp, reference] = await measureAll(
    ctx,
    [
      { server: phase.idp, db: phase.db, job: job(basic(rs.clientId, rs.clientSecret), mineBody) },
      { server: phase.ref, db: undefined, job: job(basic('bench-rs', phase.refSecrets.rs), theirsBody) },
    ],
    ctx.options.profile ? `introspect-${phase.alg}` : undefined,
  );
  log(`introspect ${describe(agentIdp)}`);
  log(`introspect ${describe(reference)}`);
  await expect('both still introspect their token as active', check);
  const ratio = agentIdp.rps / reference.rps;
  const cpuRatio = cpuRatioOf(agentIdp, reference);
  return {
    scenario: 'introspect',
    label: 'introspection',
    alg: phase.alg,
    agentIdp,
    reference,
    baseline: { label: 'reference opaque introspection', rps: reference.rps },
    ratio,
    cpuRatio,
    targets: [ratioTarget('introspection req/s', ratio, cpuRatio), noFailures(agentIdp)],
    notes: [
      `agent-idp introspects a ${phase.alg} JWT (signature, claims, revocation and agent state in PostgreSQL); the reference an opaque token from memory`,
    ],
  };
}

async function agentsScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const path = '/api/v1/agents?limit=20';
  const first = await http(phase.idp.url, 'GET', path, { bearer: phase.fixtures.adminToken });
  await expect('the agents page holds 20 agents', async () => first.status === 200 && first.body.data.length === 20);
  const agentIdp = await measure(
    ctx,
    phase.idp,
    phase.db,
    {
      connections: ctx.options.connections,
      duration: ctx.options.duration,
      warmup: ctx.options.warmup,
      requests: [{ method: 'GET', path, headers: { authorization: `Bearer ${phase.fixtures.adminToken}` } }],
    },
    ctx.options.profile ? `agents-${phase.alg}` : undefined,
  );
  log(`agents ${describe(agentIdp)}`);
  return {
    scenario: 'agents',
    label: 'GET /api/v1/agents',
    alg: phase.alg,
    agentIdp,
    targets: [noFailures(agentIdp)],
    notes: [`page of 20 out of ${first.body.total} agents in the org; bearer token checked on every request; the reference has no management API`],
  };
}

async function bcryptProbe(ctx: Context, cost: number): Promise<{ medianMs: number; minMs: number }> {
  const [command, args] = pinned(ctx.pinning.servers, process.execPath, [join(BENCH_DIR, 'bcrypt-probe.ts'), String(cost), '12']);
  const out = execFileSync(command, args, { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

async function coldScenario(ctx: Context, phase: Phase, bcryptCost: number): Promise<ScenarioResult> {
  const { options } = ctx;
  const before = await bcryptProbe(ctx, bcryptCost);
  const cores = phase.idp.cores;
  const needed = Math.ceil(((cores * 1000) / before.medianMs) * options.duration * 1.3) + options.connections + 8;
  log(`cold: one bcrypt compare (cost ${bcryptCost}) takes ${before.medianMs} ms on the servers' core; creating ${needed} agents with fresh secrets`);
  const started = performance.now();
  // Creating secrets costs bcrypt too: let the server use every core for it, then pin it back.
  if (ctx.pinning.servers) setAffinity(phase.idp.pid, allCpus());
  let fresh: { clientId: string; clientSecret: string }[];
  try {
    fresh = await inParallel(
      Array.from({ length: needed }, (_, i) => i),
      8,
      (i) => agentWithSecret(phase.idp.url, phase.fixtures.adminToken, { name: `bench-cold-${i}`, ...AGENT_BODY }),
    );
  } finally {
    if (ctx.pinning.servers) setAffinity(phase.idp.pid, ctx.pinning.servers);
  }
  log(`cold: created in ${round((performance.now() - started) / 1000, 1)} s`);
  const pool: PoolEntry[] = fresh.map((c) => ({ headers: { authorization: basic(c.clientId, c.clientSecret) } }));
  const agentIdp = await measure(
    ctx,
    phase.idp,
    phase.db,
    {
      connections: options.connections,
      duration: options.duration,
      warmup: 0,
      // Every request takes the next never-used secret; connections pre-build one request each.
      amount: needed - options.connections - 4,
      requests: [{ method: 'POST', path: '/token', headers: { 'content-type': FORM }, body: TOKEN_BODY, pool: 'cold' }],
      pools: { cold: pool },
      timeoutSeconds: 60,
    },
    options.profile ? `cold-${phase.alg}` : undefined,
  );
  log(`cold ${describe(agentIdp)}`);
  // Probed again after the run: on a shared machine one probe can land in a busy moment; the
  // faster of the two is the fairer estimate of what the core can do.
  const after = await bcryptProbe(ctx, bcryptCost);
  const probe = after.medianMs < before.medianMs ? after : before;
  const bound = (cores * 1000) / probe.medianMs;
  ctx.bcrypt = {
    cost: bcryptCost,
    medianMs: probe.medianMs,
    minMs: Math.min(before.minMs, after.minMs),
    probesMs: [before.medianMs, after.medianMs],
    serverCores: cores,
    boundRps: round(bound, 2),
  };
  log(`cold: bcrypt probes ${before.medianMs} ms before, ${after.medianMs} ms after: bound ${round(bound, 1)} req/s on ${cores} core(s)`);
  const ratio = agentIdp.rps / bound;
  // What the run would reach with the core to itself: bcrypt ms / server CPU ms per request.
  const cpuRatio = agentIdp.cpuMsPerReq ? probe.medianMs / agentIdp.cpuMsPerReq : undefined;
  const notes = [
    `bound = ${cores} core(s) × 1000 / ${probe.medianMs} ms (one bcrypt compare at cost ${bcryptCost} on the servers' core: the lower of two medians of 12, before and after the run: ${before.medianMs} / ${after.medianMs} ms)`,
  ];
  if (agentIdp.requests >= needed - options.connections - 4)
    notes.push('ran out of fresh secrets before the duration ended (the figure is still per second of the run)');
  return {
    scenario: 'cold',
    label: '/token cold (bcrypt)',
    alg: phase.alg,
    agentIdp,
    baseline: { label: `cores × 1000 / bcrypt ms = ${round(bound, 1)}`, rps: round(bound, 2) },
    ratio,
    cpuRatio,
    targets: [
      {
        name: 'cold /token req/s',
        goal: '≥ 0.8 × cores × 1000 / bcrypt ms',
        value: `${round(ratio)}${cpuRatio === undefined ? '' : ` (CPU-normalised ${round(cpuRatio)})`}`,
        met: ratio >= 0.8,
      },
      noFailures(agentIdp),
    ],
    notes,
  };
}

async function ensureMixedAgents(ctx: Context, phase: Phase): Promise<{ clientId: string; clientSecret: string }[]> {
  if (phase.mixed) return phase.mixed;
  const { options } = ctx;
  const org = await createOrg(phase.idp.url, phase.fixtures.operatorToken, `bench-mixed-${randomBytes(4).toString('hex')}`);
  log(
    `mixed: seeding ${options.mixedAgents} agents with one secret each (bcrypt cost ${options.mixedBcryptCost}) through the server's AgentsService.build + CredentialsService.mint`,
  );
  if (ctx.pinning.servers) setAffinity(phase.idp.pid, allCpus());
  let reply: ServerReply;
  try {
    reply = await phase.idp.request({ type: 'seed', id: 0, orgId: org.orgId, count: options.mixedAgents, bcryptCost: options.mixedBcryptCost, ...AGENT_BODY });
  } finally {
    if (ctx.pinning.servers) setAffinity(phase.idp.pid, ctx.pinning.servers);
  }
  if (reply.type !== 'seeded') throw new Error('seeding failed');
  log(`mixed: seeded in ${round(reply.ms / 1000, 1)} s`);
  phase.mixed = reply.agents;
  const probe = reply.agents[0];
  await accessToken(phase.idp.url, probe.clientId, probe.clientSecret, { scope: BENCH_SCOPE });
  return reply.agents;
}

async function mixedScenario(ctx: Context, phase: Phase, tokenResult: ScenarioResult | undefined): Promise<ScenarioResult[]> {
  const { options } = ctx;
  const agents = await ensureMixedAgents(ctx, phase);
  const pool: PoolEntry[] = agents.map((c) => ({ headers: { authorization: basic(c.clientId, c.clientSecret) } }));
  const requests: RequestTemplate[] = [{ method: 'POST', path: '/token', headers: { 'content-type': FORM }, body: TOKEN_BODY, pool: 'mixed' }];
  // First pass: every agent once, each paying its bcrypt compare (unmeasured warm-up of the
  // secret memory, reported on its own).
  // (At most two minutes: with a high --mixed-bcrypt-cost the rest is verified in the measured run.)
  const firstPass = await measure(ctx, phase.idp, phase.db, {
    connections: options.connections,
    duration: 120,
    warmup: 0,
    amount: agents.length,
    requests,
    pools: { mixed: pool },
    timeoutSeconds: 60,
  });
  log(`mixed first pass ${describe(firstPass)}`);
  const agentIdp = await measure(
    ctx,
    phase.idp,
    phase.db,
    { connections: options.connections, duration: options.duration, warmup: 0, requests, pools: { mixed: pool } },
    options.profile ? `mixed-${phase.alg}` : undefined,
  );
  log(`mixed ${describe(agentIdp)}`);
  const secretCost = `secrets of bcrypt cost ${options.mixedBcryptCost}, not the production 10 (so that 10,000 can be created in seconds)`;
  const first: ScenarioResult = {
    scenario: 'mixed-first-pass',
    label: `mixed: 1st pass (${agents.length} cold)`,
    alg: phase.alg,
    agentIdp: firstPass,
    targets: [noFailures(firstPass)],
    notes: [`each of the ${agents.length} agents once, each paying one bcrypt compare; ${secretCost}`],
  };
  const ref = tokenResult?.reference;
  const steady: ScenarioResult = {
    scenario: 'mixed',
    label: `mixed: ${agents.length} agents`,
    alg: phase.alg,
    agentIdp,
    ...(ref ? { baseline: { label: `reference /token ${phase.alg} (one client; for information)`, rps: ref.rps }, ratio: agentIdp.rps / ref.rps } : {}),
    targets: [noFailures(agentIdp)],
    notes: [
      `round-robin /token over the ${agents.length} agents after the first pass (the secret memory keeps an entry ${process.env.SECRET_MEMORY_SECONDS ?? 60} s)`,
    ],
  };
  return [first, steady];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
}

async function soakScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const { options } = ctx;
  const agents = await ensureMixedAgents(ctx, phase);
  const { warm, rs, token, adminToken } = phase.fixtures;
  const mixedPool: PoolEntry[] = agents.map((c) => ({ headers: { authorization: basic(c.clientId, c.clientSecret) } }));
  const tokenOf = (pool?: string, authorization?: string): RequestTemplate => ({
    method: 'POST',
    path: '/token',
    headers: { 'content-type': FORM, ...(authorization ? { authorization } : {}) },
    body: TOKEN_BODY,
    ...(pool ? { pool } : {}),
  });
  // Each connection cycles through this mix: tokens for the 10,000 agents and the warm one,
  // introspection, JWKS and the management listing.
  const requests: RequestTemplate[] = [
    tokenOf('mixed'),
    tokenOf('mixed'),
    tokenOf(undefined, basic(warm.clientId, warm.clientSecret)),
    {
      method: 'POST',
      path: '/token/introspect',
      headers: { authorization: basic(rs.clientId, rs.clientSecret), 'content-type': FORM },
      body: new URLSearchParams({ token }).toString(),
    },
    { method: 'GET', path: '/.well-known/jwks.json' },
    { method: 'GET', path: '/api/v1/agents?limit=20', headers: { authorization: `Bearer ${adminToken}` } },
  ];
  const idle = await phase.idp.request({ type: 'heap', id: 0, gc: true });
  // One minute of the same traffic first, unmeasured: the bounded memories (secret memory,
  // agents and credentials of the 10,000 agents) fill up once; growth is judged after that.
  log('soak: 60 s of warm-up traffic (fills the bounded in-memory state)');
  await measure(ctx, phase.idp, phase.db, {
    connections: options.connections,
    duration: 60,
    warmup: 0,
    requests,
    pools: { mixed: mixedPool },
    sampleEvery: 5,
    timeoutSeconds: 60,
  });
  const before = await phase.idp.request({ type: 'heap', id: 0, gc: true });
  const seconds = Math.round(options.soakMinutes * 60);
  log(`soak: ${seconds} s of mixed traffic, RSS sampled every 5 s`);
  const agentIdp = await measure(ctx, phase.idp, phase.db, {
    connections: options.connections,
    duration: seconds,
    warmup: 0,
    requests,
    pools: { mixed: mixedPool },
    sampleEvery: 5,
    timeoutSeconds: 60,
  });
  const after = await phase.idp.request({ type: 'heap', id: 0, gc: true });
  log(`soak ${describe(agentIdp)}`);
  const samples = agentIdp.rssSamples;
  const window = (from: number, to: number) => samples.filter((s) => s.t >= from * seconds && s.t <= to * seconds).map((s) => s.rssMb);
  const early = median(window(0.1, 0.3));
  const late = median(window(0.8, 1));
  const growth = late - early;
  const heapIdle = idle.type === 'heap' ? idle.heapUsedMb : 0;
  const heapBefore = before.type === 'heap' ? before.heapUsedMb : 0;
  const heapAfter = after.type === 'heap' ? after.heapUsedMb : 0;
  const allowed = Math.max(10, early * 0.05);
  return {
    scenario: 'soak',
    label: `soak ${options.soakMinutes} min`,
    alg: phase.alg,
    agentIdp,
    targets: [
      {
        name: `RSS growth over ${options.soakMinutes} min (median of 10–30 % vs 80–100 % of the run)`,
        goal: `≤ max(10 MB, 5 %)`,
        value: `${round(early, 1)} → ${round(late, 1)} MB (${growth >= 0 ? '+' : ''}${round(growth, 1)} MB)`,
        met: options.soakMinutes >= 10 ? growth <= allowed : null,
      },
      {
        name: 'heap after full GC, after the warm-up minute → after the soak',
        goal: '≤ +10 MB',
        value: `${round(heapBefore, 1)} → ${round(heapAfter, 1)} MB (${round(heapIdle, 1)} MB before any traffic)`,
        met: heapAfter - heapBefore <= 10,
      },
      noFailures(agentIdp),
    ],
    notes: options.soakMinutes >= 10 ? [] : [`shorter than the 10 minutes of the target: growth reported, not judged`],
  };
}

// ---------------------------------------------------------------------------------------------
// phases: one agent-idp and one reference per signing algorithm

async function startPhase(ctx: Context, alg: string): Promise<Phase> {
  const db = await benchDatabase(process.env.DATABASE_URL);
  const operator = (() => {
    const clientId = randomUUID();
    return { clientId, clientSecret: generateSecret(randomUUID()) };
  })();
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    ...db.env,
    KEY_ALG: alg,
    BCRYPT_COST: process.env.BCRYPT_COST ?? '10',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    BOOTSTRAP_ADMIN_CLIENT_ID: operator.clientId,
    BOOTSTRAP_ADMIN_CLIENT_SECRET: operator.clientSecret,
  };
  for (const name of ['DATABASE_POOL_SIZE', 'SECRET_MEMORY_SECONDS', 'ACCESS_TOKEN_TTL_SECONDS']) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  const idp = await startServer(
    'agent-idp',
    join(BENCH_DIR, 'agent-idp-server.ts'),
    env,
    ctx.pinning.servers,
    join(RESULTS_DIR, `${ctx.runId}-agent-idp-${alg}.log`),
    [...SERVER_NODE_FLAGS, '--expose-gc'],
  );
  log(`agent-idp (${alg}) at ${idp.url}, pid ${idp.pid}, ${idp.database}`);
  const jwks = await http(idp.url, 'GET', '/.well-known/jwks.json');
  const refSecrets = { client: randomBytes(32).toString('base64url'), rs: randomBytes(32).toString('base64url') };
  const ref = await startServer(
    'reference',
    join(BENCH_DIR, 'reference-server.ts'),
    {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      BENCH_ALG: alg,
      BENCH_KEYS: String(jwks.body.keys.length),
      BENCH_CLIENT_SECRET: refSecrets.client,
      BENCH_RS_SECRET: refSecrets.rs,
    },
    ctx.pinning.servers,
    join(RESULTS_DIR, `${ctx.runId}-reference-${alg}.log`),
    SERVER_NODE_FLAGS,
  );
  log(`reference (${alg}) at ${ref.url}, pid ${ref.pid}`);
  const fixtures = await setUp(idp, operator);
  const refOpaqueToken = await accessToken(ref.url, 'bench-client', refSecrets.client, { scope: BENCH_SCOPE, resource: OPAQUE_RESOURCE });
  const idleRssMb = { agentIdp: rssOf(idp.pid), reference: rssOf(ref.pid) };
  log(`idle RSS: agent-idp ${idleRssMb.agentIdp} MB, reference ${idleRssMb.reference} MB`);
  return { alg, idp, ref, db, fixtures, refSecrets, refOpaqueToken, idleRssMb };
}

function rssOf(pid: number): number | null {
  const mb = processRssMb(pid);
  return mb === undefined ? null : round(mb, 1);
}

async function stopPhase(phase: Phase): Promise<void> {
  await Promise.all([phase.idp.stop(), phase.ref.stop()]);
  await phase.db.drop();
}

// ---------------------------------------------------------------------------------------------
// report

function pad(value: string, width: number, right = false): string {
  return right ? value.padStart(width) : value.padEnd(width);
}

function fmt(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (Math.abs(n) >= 1000) return String(Math.round(n));
  if (Math.abs(n) >= 100) return n.toFixed(Math.min(digits, 1));
  return n.toFixed(digits);
}

function table(results: ScenarioResult[]): string {
  const header = ['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'CPU ms/req', 'srv CPU', 'db ms/req', 'RSS MB', 'gen CPU', 'ratio'];
  const widths = [30, 10, 9, 8, 8, 8, 10, 7, 9, 7, 7, 6];
  const lines = [header.map((h, i) => pad(h, widths[i], i > 1)).join(' ')];
  lines.push(widths.map((w) => '-'.repeat(w)).join(' '));
  const row = (label: string, m: Measurement, ratio: string) =>
    [
      label,
      m.server,
      fmt(m.rps, 1),
      fmt(m.p50),
      fmt(m.p99),
      String(m.non2xx + m.errors),
      fmt(m.cpuMsPerReq, 3),
      m.serverCpu === null ? '–' : `${Math.round(m.serverCpu * 100)}%`,
      fmt(m.dbCpuMsPerReq, 3),
      fmt(m.rssMbMax, 0),
      `${Math.round(m.loadCpu * 100)}%`,
      ratio,
    ]
      .map((v, i) => pad(v, widths[i], i > 1))
      .join(' ');
  for (const r of results) {
    lines.push(row(r.label, r.agentIdp, r.ratio === undefined ? '' : fmt(r.ratio)));
    if (r.reference) lines.push(row('', r.reference, r.cpuRatio === undefined ? '' : `(${fmt(r.cpuRatio)})`));
    else if (r.baseline)
      lines.push(pad('', widths[0] + 1) + `vs ${r.baseline.label}${r.cpuRatio === undefined ? '' : ` (CPU-normalised ratio ${fmt(r.cpuRatio)})`}`);
  }
  return lines.join('\n');
}

function targetsTable(targets: (Target & { scenario: string })[]): string {
  const lines: string[] = [];
  for (const t of targets) {
    const mark = t.met === null ? 'not judged' : t.met ? 'MET' : 'MISSED';
    lines.push(`  ${pad(mark, 10)} ${t.name}: ${t.value} (goal ${t.goal})`);
  }
  return lines.join('\n');
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const options = parseOptions(process.argv.slice(2));
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 18)) throw new Error(`Node ${process.versions.node}: run with the project's Node (npm run bench)`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const startedAt = new Date();
  const runId = startedAt
    .toISOString()
    .replace(/:/g, '-')
    .replace(/\.\d+Z$/, 'Z');
  const cores = availableParallelism();
  const pinning: Pinning = options.pin && cores >= 2 && hasTaskset() ? { servers: '1', load: '0' } : { servers: undefined, load: undefined };
  const ctx: Context = { options, pinning, runId, profiles: [] };
  const loadBefore = loadavg();
  log(
    `run ${runId}: ${options.scenarios.join(', ')}; ${options.duration} s each (+${options.warmup} s warm-up), ${options.connections} connections; ` +
      (pinning.servers ? `servers on core ${pinning.servers}, load generator on core ${pinning.load}` : 'no CPU pinning') +
      `; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const results: ScenarioResult[] = [];
  const phaseInfo: { alg: string; agentIdp: { pid: number; idleRssMb: number | null }; reference: { pid: number; idleRssMb: number | null } }[] = [];
  let database = '';
  const bcryptCost = Number(process.env.BCRYPT_COST ?? 10);
  const phases = options.algs.map((alg, i) => ({ alg, scenarios: i === 0 ? options.scenarios : options.scenarios.filter((s) => s === 'token') }));
  for (const { alg, scenarios } of phases) {
    if (scenarios.length === 0) continue;
    const phase = await startPhase(ctx, alg);
    phaseInfo.push({
      alg,
      agentIdp: { pid: phase.idp.pid, idleRssMb: phase.idleRssMb.agentIdp },
      reference: { pid: phase.ref.pid, idleRssMb: phase.idleRssMb.reference },
    });
    database = phase.idp.database === 'postgresql' ? phase.db.description : 'embedded PGlite (in the agent-idp process)';
    try {
      let tokenResult: ScenarioResult | undefined;
      for (const scenario of scenarios) {
        log(`--- ${scenario} (${alg})`);
        switch (scenario) {
          case 'jwks':
            results.push(await jwksScenario(ctx, phase));
            break;
          case 'token':
            tokenResult = await tokenScenario(ctx, phase);
            results.push(tokenResult);
            break;
          case 'introspect':
            results.push(await introspectScenario(ctx, phase));
            break;
          case 'agents':
            results.push(await agentsScenario(ctx, phase));
            break;
          case 'cold': {
            results.push(await coldScenario(ctx, phase, bcryptCost));
            break;
          }
          case 'mixed':
            results.push(...(await mixedScenario(ctx, phase, tokenResult)));
            break;
          case 'soak':
            results.push(await soakScenario(ctx, phase));
            break;
        }
      }
    } finally {
      await stopPhase(phase);
    }
  }

  // Memory: the highest RSS agent-idp reached under load in this run.
  const rssMax = Math.max(...results.map((r) => r.agentIdp.rssMbMax ?? 0));
  const targets: (Target & { scenario: string })[] = results.flatMap((r) => r.targets.map((t) => ({ ...t, scenario: r.label })));
  targets.push({
    scenario: 'all',
    name: 'agent-idp RSS under load (highest sample of the run)',
    goal: '< 300 MB',
    value: `${round(rssMax, 1)} MB`,
    met: rssMax < 300,
  });
  if (!results.some((r) => r.scenario === 'soak')) {
    targets.push({ scenario: 'all', name: 'no RSS growth over a 10-minute run', goal: 'run --scenario soak', value: 'not run', met: null });
  }

  const finishedAt = new Date();
  const report = {
    runId,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    options,
    machine: {
      cpu: cpus()[0]?.model,
      cores,
      memoryGb: round(totalmem() / 2 ** 30, 1),
      node: process.versions.node,
      nodeFlags: SERVER_NODE_FLAGS,
      loadAverageBefore: loadBefore.map((l) => round(l)),
      loadAverageAfter: loadavg().map((l) => round(l)),
    },
    git: { commit: git(['rev-parse', 'HEAD']), changedFiles: git(['status', '--porcelain'])?.split('\n').filter(Boolean).length },
    database,
    pinning: pinning.servers ? { servers: `core ${pinning.servers}`, loadGenerator: `core ${pinning.load}` } : null,
    bcrypt: ctx.bcrypt,
    phases: phaseInfo,
    scenarios: results,
    targets,
  };
  const file = join(RESULTS_DIR, `${runId}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');

  const out: string[] = [];
  out.push('');
  out.push(
    `agent-idp vs bare oidc-provider — ${database}; ${options.connections} connections, ${options.duration} s per scenario; ${pinning.servers ? `servers pinned to core ${pinning.servers}, load generator to core ${pinning.load}` : 'no pinning'}`,
  );
  out.push(
    `node ${process.versions.node} ${SERVER_NODE_FLAGS.join(' ')}, ${cpus()[0]?.model ?? 'cpu'} × ${cores}; load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  out.push('');
  out.push(table(results));
  out.push('');
  out.push('CPU ms/req: user+system CPU of the server process per response; srv CPU: its CPU time / wall time (below 100 % at full load: it waits,');
  out.push('on its database or for a core shared with other work); db ms/req: CPU of its PostgreSQL backends; RSS: highest sample;');
  out.push('gen CPU: load generator busy share (near 100 %: it limits the figure); ratio: agent-idp / reference req/s (in parentheses: reference');
  out.push('CPU ms/req / agent-idp CPU ms/req, the ratio if each had a core to itself).');
  const notes = results.flatMap((r) => r.notes.map((n) => `  ${r.label}: ${n}`));
  if (notes.length) out.push('notes:', ...notes);
  out.push('');
  out.push('targets:');
  out.push(targetsTable(targets));
  if (ctx.profiles.length) out.push('', ...ctx.profiles);
  out.push('', `results written to ${relative(process.cwd(), file)}`);
  process.stdout.write(out.join('\n') + '\n');
}

let cleaning = false;
async function cleanUp() {
  if (cleaning) return;
  cleaning = true;
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch {
      // best effort
    }
  }
}

process.on('SIGINT', () => {
  log('interrupted: stopping servers and dropping the bench databases');
  void cleanUp().then(() => process.exit(130));
});

try {
  await main();
  await cleanUp();
} catch (err) {
  process.stderr.write(`[bench] failed: ${(err as Error).stack ?? err}\n`);
  await cleanUp();
  process.exit(1);
}
// Keep-alive sockets of the set-up requests would hold the process open.
process.exit(0);
