import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { generateSecret } from '../src/credentials/secrets.ts';
import { isRunning } from '../src/db/embedded.ts';
import { Webhook } from 'standardwebhooks';
import { api } from './helpers/api.ts';
import { eventually } from './helpers/eventually.ts';
import { startReceiver, type Receiver } from './helpers/receiver.ts';
import { createAgent, managementToken } from './factories.ts';

// The process as an operator runs it: `npm start` (or `node src/main.ts`) on the embedded
// database in a DATA_DIR of its own, stopped by a signal to the process that was started.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// PGlite takes several seconds to start on a loaded machine; these limits are far above that.
const START_LIMIT_MS = 90_000;
const TEST_TIMEOUT_MS = 180_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Started {
  child: ChildProcess;
  dataDir: string;
  stdout: string[];
  stderr: string[];
  exited: Promise<Exit>;
}

const started: Started[] = [];
/** Every pid seen under a started process, so that a failed test leaves none behind. */
const seenPids = new Set<number>();

function environment(dataDir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  // METRICS_PORT 0: a free port, never one another process of this machine holds.
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'info', HOST: '127.0.0.1', BCRYPT_COST: '4', METRICS_PORT: '0', ...extra };
  // Embedded mode, whatever database the suite itself runs on.
  delete env.DATABASE_URL;
  delete env.KEY_ENCRYPTION_KEY;
  // A restart passes the operator of the first start.
  env.BOOTSTRAP_ADMIN_CLIENT_ID = extra.BOOTSTRAP_ADMIN_CLIENT_ID ?? randomUUID();
  env.BOOTSTRAP_ADMIN_CLIENT_SECRET = extra.BOOTSTRAP_ADMIN_CLIENT_SECRET ?? generateSecret(randomUUID());
  return env;
}

/** `dataDir`: the DATA_DIR of an earlier start (a restart); by default a new one. */
function start(command: string, args: string[], extra: Record<string, string>, dataDir = mkdtempSync(join(tmpdir(), 'aidp-process-'))): Started {
  const child = spawn(command, args, { cwd: ROOT, env: environment(dataDir, extra), stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => stdout.push(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const s = { child, dataDir, stdout, stderr, exited };
  started.push(s);
  return s;
}

/** The "agent-idp listening" log line (JSON on stdout), once it is there. */
async function listening(s: Started): Promise<{ url: string }> {
  const deadline = Date.now() + START_LIMIT_MS;
  while (Date.now() < deadline) {
    for (const line of s.stdout.join('').split('\n')) {
      if (!line.startsWith('{')) continue;
      const record = JSON.parse(line) as { msg: string; url: string };
      if (record.msg === 'agent-idp listening') return record;
    }
    if (s.child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no "agent-idp listening" line; stdout:\n${s.stdout.join('')}\nstderr:\n${s.stderr.join('')}`);
}

/** The pids of every live process below `pid` (from /proc: the process tree of this machine). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name may hold spaces and parentheses: the fields after its closing one are fixed.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

afterEach(async () => {
  for (const s of started.splice(0)) {
    for (const pid of [s.child.pid!, ...seenPids]) {
      if (isRunning(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(s.dataDir, { recursive: true, force: true });
  }
  seenPids.clear();
});

describe.each(['SIGTERM', 'SIGINT'] as const)('%s to the process `npm start` started', (signal) => {
  it(
    'stops the server: npm exits 0, the port and the DATA_DIR lock are released, no node process of it remains',
    async () => {
      const s = start('npm', ['start'], { PORT: '0' });
      const { url } = await listening(s);
      const port = Number(new URL(url).port);
      const lockFile = join(s.dataDir, 'agent-idp.pid');
      const serverPid = Number(readFileSync(lockFile, 'utf8'));
      const below = descendants(s.child.pid!);
      below.forEach((pid) => seenPids.add(pid));
      // The server that holds DATA_DIR is a process of this npm, whatever the chain between them.
      expect(below).toContain(serverPid);
      expect(await portIsFree(port)).toBe(false);

      s.child.kill(signal);
      const exit = await s.exited;

      expect(exit).toEqual({ code: 0, signal: null });
      expect(s.stdout.join('')).toMatch(/"msg":"stopped"/);
      expect(below.filter(isRunning)).toEqual([]);
      expect(await portIsFree(port)).toBe(true);
      expect(existsSync(lockFile)).toBe(false);
      expect(existsSync(join(s.dataDir, 'socket', '.s.PGSQL.5432'))).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );
});

describe('the drain of `npm start`', () => {
  it(
    'answers /readyz 503 from the first SIGTERM while still serving; a second signal ends the wait and the process exits 0',
    async () => {
      const s = start('npm', ['start'], { PORT: '0', SHUTDOWN_DELAY_SECONDS: '300' });
      const { url } = await listening(s);
      descendants(s.child.pid!).forEach((pid) => seenPids.add(pid));
      expect((await fetch(`${url}/readyz`)).status).toBe(200);

      s.child.kill('SIGTERM');
      // The drain has started once /readyz says so; the server still answers everything else.
      let readyz = await fetch(`${url}/readyz`);
      while (readyz.status === 200) readyz = await fetch(`${url}/readyz`);
      expect(readyz.status).toBe(503);
      expect(await readyz.json()).toEqual({ status: 'unavailable', draining: true });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/.well-known/jwks.json`)).status).toBe(200);

      s.child.kill('SIGTERM');
      expect(await s.exited).toEqual({ code: 0, signal: null });
      expect(s.stdout.join('')).toMatch(/"msg":"second signal: closing without waiting for the shutdown delay"/);
    },
    TEST_TIMEOUT_MS,
  );
});

describe('a port already in use', () => {
  let holder: Server;
  let port: number;

  beforeEach(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    port = (holder.address() as { port: number }).port;
  });

  afterEach(async () => {
    await new Promise((resolve) => holder.close(resolve));
  });

  it(
    'is one line on stderr naming the port, exit 1, and the embedded database and DATA_DIR lock are released',
    async () => {
      // The pinned runtime that runs this suite, as `npm start` runs it (npm adds its own error lines).
      const s = start(process.execPath, ['--max-semi-space-size=16', 'src/main.ts'], { PORT: String(port) });
      const exit = await s.exited;

      expect(exit).toEqual({ code: 1, signal: null });
      expect(s.stderr.join('')).toBe(`agent-idp: port ${port} is already in use (PORT=${port}, HOST=127.0.0.1)\n`);
      expect(s.stdout.join('')).not.toMatch(/agent-idp listening/);
      expect(existsSync(join(s.dataDir, 'agent-idp.pid'))).toBe(false);
      expect(existsSync(join(s.dataDir, 'socket', '.s.PGSQL.5432'))).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );
});

describe('a webhook event made while its receiver is down', () => {
  let receiver: Receiver | undefined;
  afterEach(async () => {
    await receiver?.close();
  });

  it(
    'survives kill -9 of the server and arrives, signed, after the restart',
    async () => {
      // A port nobody listens on yet: the receiver comes up on it only after the crash. The
      // server keeps its port across the restart, so that its issuer (PUBLIC_URL) stays the same.
      const freePort = async () => {
        const probe = createServer();
        await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
        const { port } = probe.address() as { port: number };
        await new Promise((resolve) => probe.close(resolve));
        return port;
      };
      const receiverPort = await freePort();
      const serverPort = await freePort();

      const operator = { clientId: randomUUID(), clientSecret: '' };
      operator.clientSecret = generateSecret(operator.clientId);
      const env = {
        PORT: String(serverPort),
        PUBLIC_URL: `http://127.0.0.1:${serverPort}`,
        WEBHOOK_ALLOW_INSECURE_URLS: 'true',
        WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
        WEBHOOK_RETRY_BASE_SECONDS: '1',
        BOOTSTRAP_ADMIN_CLIENT_ID: operator.clientId,
        BOOTSTRAP_ADMIN_CLIENT_SECRET: operator.clientSecret,
      };
      const first = start('npm', ['start'], env);
      const { url } = await listening(first);
      descendants(first.child.pid!).forEach((pid) => seenPids.add(pid));
      const token = await managementToken({ url }, operator.clientId, operator.clientSecret);
      const hook = await api(url, token).post('/api/v1/webhooks', { body: { url: `http://127.0.0.1:${receiverPort}/after-crash`, events: ['agent.created'] } });
      expect(hook.status).toBe(201);
      const agent = await createAgent({ url }, token, { name: 'made-before-the-crash' });
      // Tried while the receiver was down.
      const log = () => api(url, token).get(`/api/v1/webhooks/${hook.body.webhookId}/deliveries`);
      await eventually(async () => Boolean((await log()).body.data[0]?.lastError));
      expect((await log()).body.data[0]).toMatchObject({ type: 'agent.created', status: 'pending', lastStatusCode: null });

      // kill -9 of the node process that serves (and of npm above it): no drain, no flush.
      const serverPid = Number(readFileSync(join(first.dataDir, 'agent-idp.pid'), 'utf8'));
      process.kill(serverPid, 'SIGKILL');
      first.child.kill('SIGKILL');
      await first.exited;
      await eventually(() => !isRunning(serverPid));

      receiver = await startReceiver(receiverPort);
      const second = start('npm', ['start'], env, first.dataDir);
      const restarted = await listening(second);
      descendants(second.child.pid!).forEach((pid) => seenPids.add(pid));
      await eventually(() => receiver!.to('/after-crash').length >= 1, { timeoutMs: 60_000 });
      const [got] = receiver.to('/after-crash');
      const payload = new Webhook(hook.body.secret).verify(got.body, {
        'webhook-id': String(got.headers['webhook-id']),
        'webhook-timestamp': String(got.headers['webhook-timestamp']),
        'webhook-signature': String(got.headers['webhook-signature']),
      }) as { type: string; data: { target: { id: string } } };
      expect(payload).toMatchObject({ type: 'agent.created', data: { target: { id: agent.agentId } } });
      const token2 = await managementToken(restarted, operator.clientId, operator.clientSecret);
      await eventually(
        async () => (await api(restarted.url, token2).get(`/api/v1/webhooks/${hook.body.webhookId}/deliveries`)).body.data[0]?.status === 'delivered',
      );
    },
    TEST_TIMEOUT_MS,
  );
});
