import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { generateSecret } from '../src/credentials/secrets.ts';
import { BENCH_SCOPE, OPAQUE_RESOURCE, allCpus, hasTaskset, pinned, processRssMb, type ServerReply, type ServerRequest } from './lib.ts';
import { BENCH_DIR, RESULTS_DIR, ROOT, cleanups, log, round, sleep } from './common.ts';
import { http, referenceToken, setUp } from './fixtures.ts';
import type { Context, Phase } from './scenarios/types.ts';

// The processes under load: agent-idp (bench/agent-idp-server.ts) and the reference
// (bench/reference-server.ts), each in a child process of its own, pinned to the servers' core,
// and agent-idp's database; one of each per signing algorithm (a phase).

/**
 * How `npm start` (package.json) runs the server: the variables its shell sets before `exec`
 * (glibc's malloc arenas, Node's compile cache) and the Node flags. Both servers are started the
 * same way, so that agent-idp runs as it does in production and the reference on the same runtime
 * settings. A start script of another shape stops the bench rather than being half-followed.
 */
const START_SCRIPT = (() => {
  const start: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start;
  const parts = /^((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)exec node((?:\s+--\S+)*)\s+src\/main\.ts$/.exec(start.trim());
  if (!parts) throw new Error(`bench/servers.ts does not know how to follow package.json's start script: ${start}`);
  return { assignments: parts[1].trim(), flags: parts[2].trim().split(/\s+/).filter(Boolean) };
})();

/** The Node flags of `npm start`, given to both servers. */
export const SERVER_NODE_FLAGS: string[] = START_SCRIPT.flags;

/** The variable assignments of `npm start`, as written there (sh expands them when a server starts). */
export const SERVER_ENV_ASSIGNMENTS: string = START_SCRIPT.assignments;

/**
 * node with `args`, through sh when the start script sets variables: sh expands them against
 * the server's environment exactly as npm's shell does, then execs node (same pid).
 */
function nodeCommand(args: string[]): [string, string[]] {
  if (!SERVER_ENV_ASSIGNMENTS) return [process.execPath, args];
  return ['sh', ['-c', `${SERVER_ENV_ASSIGNMENTS} exec "$0" "$@"`, process.execPath, ...args]];
}

export interface Pinning {
  servers: string | undefined;
  load: string | undefined;
}

/**
 * Both servers on core 1, so that neither has more CPU than the other; the load generator on
 * core 0. With agent-idp's WORKERS > 1 (--workers), both servers may use every core, the load
 * generator's too: the workers need more than one core, and the reference, one process, uses
 * at most one of them whichever it is.
 */
export function choosePinning(pin: boolean, cores: number, workers = 1): Pinning {
  if (!pin || cores < 2 || !hasTaskset()) return { servers: undefined, load: undefined };
  return { servers: workers > 1 ? allCpus() : '1', load: '0' };
}

export interface ServerHandle {
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
  const [command, args] = pinned(cpusList, ...nodeCommand([...nodeArgs, script]));
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

// ---------------------------------------------------------------------------------------------
// databases

export interface BenchDatabase {
  env: Record<string, string>;
  description: string;
  /** Backend pids serving this database, to count their CPU time; absent when it runs inside agent-idp. */
  backendPids?: () => Promise<number[]>;
  /** What this database's active backends are waiting on now ("Lock:relation", "IO:WALSync", ...); absent when embedded. */
  waits?: () => Promise<string[]>;
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
    async waits() {
      const { rows } = await admin.query<{ wait: string }>(
        `SELECT wait_event_type || ':' || wait_event AS wait FROM pg_stat_activity
          WHERE datname = $1 AND state = 'active' AND wait_event IS NOT NULL AND pid <> pg_backend_pid()`,
        [name],
      );
      return rows.map((r) => r.wait);
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
// phases: one agent-idp and one reference per signing algorithm

export async function startPhase(ctx: Context, alg: string): Promise<Phase> {
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
    // The metrics listener runs as in production, on a free port (a fixed one may be taken on a shared machine).
    METRICS_PORT: '0',
    BOOTSTRAP_ADMIN_CLIENT_ID: operator.clientId,
    BOOTSTRAP_ADMIN_CLIENT_SECRET: operator.clientSecret,
    // The federation scenario's issuer runs in the harness, on loopback over http.
    FEDERATION_ALLOW_INSECURE_ISSUERS: 'true',
    // The agents and soak scenarios measure the management listing with one admin token, at
    // hundreds of requests a second: above the per-token limit of production (50/s), which
    // would answer most of them 429. The limiter's own cost is still paid on every request.
    MANAGEMENT_RATE_LIMIT: process.env.MANAGEMENT_RATE_LIMIT ?? '100000',
    // A cluster of that many processes on one port (PostgreSQL only); its CPU and RSS are the process tree's (lib.ts).
    WORKERS: String(ctx.options.workers),
  };
  for (const name of ['DATABASE_POOL_SIZE', 'SECRET_MEMORY_SECONDS', 'ACCESS_TOKEN_TTL_SECONDS', 'AUDIT_CHECKPOINT_SECONDS']) {
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
  log(`agent-idp (${alg}) at ${idp.url}, pid ${idp.pid}, ${idp.database}${ctx.options.workers > 1 ? `, ${ctx.options.workers} workers` : ''}`);
  if (SERVER_ENV_ASSIGNMENTS) log(`both servers started as npm start starts agent-idp: ${SERVER_ENV_ASSIGNMENTS} node ${SERVER_NODE_FLAGS.join(' ')}`);
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
  const fixtures = await setUp(idp.url, operator);
  const refOpaqueToken = await referenceToken(ref.url, 'bench-client', refSecrets.client, { scope: BENCH_SCOPE, resource: OPAQUE_RESOURCE });
  const idleRssMb = { agentIdp: rssOf(idp.pid), reference: rssOf(ref.pid) };
  log(`idle RSS: agent-idp ${idleRssMb.agentIdp} MB, reference ${idleRssMb.reference} MB`);
  return { alg, idp, ref, db, fixtures, refSecrets, refOpaqueToken, idleRssMb };
}

function rssOf(pid: number): number | null {
  const mb = processRssMb(pid);
  return mb === undefined ? null : round(mb, 1);
}

export async function stopPhase(phase: Phase): Promise<void> {
  await Promise.all([phase.idp.stop(), phase.ref.stop()]);
  await phase.db.drop();
}
