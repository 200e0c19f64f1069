import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { loadConfig } from '../config/index.ts';
import { createLogger } from '../src/lib/logger.ts';
import { createIdp } from '../src/app/idp.ts';
import { Cluster } from '../src/app/cluster.ts';
import { onStopFromPrimary, tellPrimary } from '../src/app/cluster-messages.ts';
import { answerMetricsRequests } from '../src/metrics/cluster-metrics.ts';
import { AgentsService } from '../src/agents/agents.service.ts';
import { AgentEntity, type Agent } from '../src/agents/agent.entity.ts';
import { CredentialsService } from '../src/credentials/credentials.service.ts';
import { SecretMemory } from '../src/credentials/secret-memory.ts';
import { CredentialEntity } from '../src/credentials/credential.entity.ts';
import type { ServerReply, ServerRequest } from './lib.ts';
import { Timeline } from './timeline.ts';

// agent-idp as the benchmark runs it: the production server (loadConfig + createIdp + listen)
// in a process of its own, so that its CPU time and RSS can be read from /proc. Configured by
// the environment the harness passes (DATABASE_URL or DATA_DIR, KEY_ALG, BOOTSTRAP_ADMIN_*,
// LOG_LEVEL). Reports its URL over the IPC channel when listening.
//
// Bench-only hooks over IPC (never reachable over HTTP):
// - seed: inserts many agents with one credential each, built by the project's own
//   AgentsService.build and CredentialsService.mint (bcrypt at the cost asked for);
// - heap: heap and RSS, after a full GC when asked (the harness starts us with --expose-gc);
// - profile-start / profile-stop: a CPU profile of a measured window, through node:inspector;
// - timeline-start / timeline-stop: what the process did each second (bench/timeline.ts).
//
// WORKERS > 1: this process is the cluster's primary (src/app/cluster.ts, as `npm start` runs
// it) and each worker runs this file too, as one instance that reports to the primary. The
// primary passes the harness's requests on: seed and the profile to the first worker (a profile
// is of that worker alone), heap to every worker, summed.

function send(message: ServerReply): void {
  process.send?.(message);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const port = process.env.PORT && process.env.PORT !== '0' ? Number(process.env.PORT) : await freePort();
// The workers of a cluster inherit it: they all serve one port.
process.env.PORT = String(port);
const config = loadConfig({ ...process.env, PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}` });
const inCluster = config.workers > 1;
const logger = createLogger(config.logLevel, undefined, inCluster ? { pid: process.pid } : {});
const ready = (url: string) =>
  ({ type: 'ready', url, cores: availableParallelism(), database: config.databaseUrl ? 'postgresql' : `embedded (${config.dataDir})` }) as const;

if (inCluster && cluster.isPrimary) await runPrimary();
const idp = await createIdp(inCluster ? { ...config, metricsPort: undefined } : config, logger);
const url = await idp.listen(port, '127.0.0.1');
const dataSource = idp.database.dataSource;

let profiler: Session | undefined;
let timeline: Timeline | undefined;

async function handle(request: ServerRequest): Promise<void> {
  switch (request.type) {
    case 'seed': {
      const started = performance.now();
      const { repositories } = idp.container;
      const credentials = new CredentialsService(dataSource, repositories, new SecretMemory(0), { bcryptCost: request.bcryptCost });
      const agents: { clientId: string; clientSecret: string }[] = [];
      const batch = 500;
      for (let done = 0; done < request.count; done += batch) {
        const rows = Array.from({ length: Math.min(batch, request.count - done) }, (_, i) =>
          AgentsService.build(request.orgId, { name: `bench-mixed-${done + i}`, scopes: request.scopes, audiences: request.audiences }),
        );
        const issued = await Promise.all(rows.map((agent) => credentials.mint(agent, null)));
        await dataSource.transaction(async (manager) => {
          await manager.getRepository(AgentEntity).insert(rows as QueryDeepPartialEntity<Agent>[]);
          await manager.getRepository(CredentialEntity).insert(issued.map((i) => i.credential));
        });
        rows.forEach((agent, i) => agents.push({ clientId: agent.id, clientSecret: issued[i].secret }));
      }
      send({ type: 'seeded', id: request.id, agents, ms: performance.now() - started });
      return;
    }
    case 'heap': {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (request.gc && gc) {
        gc();
        await new Promise((resolve) => setImmediate(resolve));
        gc();
      }
      const usage = process.memoryUsage();
      const mb = (n: number) => n / 1024 / 1024;
      send({ type: 'heap', id: request.id, heapUsedMb: mb(usage.heapUsed), rssMb: mb(usage.rss), externalMb: mb(usage.external) });
      return;
    }
    case 'profile-start': {
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 1000 });
      await profiler.post('Profiler.start');
      send({ type: 'profile-started', id: request.id });
      return;
    }
    case 'timeline-start': {
      timeline = new Timeline(idp);
      timeline.start();
      send({ type: 'timeline', id: request.id, seconds: [] });
      return;
    }
    case 'timeline-stop': {
      if (!timeline) throw new Error('no timeline running');
      send({ type: 'timeline', id: request.id, seconds: timeline.stop() });
      timeline = undefined;
      return;
    }
    case 'profile-stop': {
      if (!profiler) throw new Error('no profile running');
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      profiler = undefined;
      writeFileSync(request.file, JSON.stringify(profile));
      send({ type: 'profile-stopped', id: request.id, file: request.file });
      return;
    }
  }
}

process.on('message', (request: ServerRequest) => {
  handle(request).catch((err: Error) => send({ type: 'failed', id: request.id, message: err.stack ?? err.message }));
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await idp.close();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
// The harness went away: do not linger.
process.on('disconnect', () => void stop());

if (cluster.isWorker) {
  answerMetricsRequests(idp.metrics.registry);
  onStopFromPrimary(() => void stop());
  await tellPrimary({ type: 'agent-idp:listening', url });
} else {
  send(ready(url));
}

/** The primary of WORKERS > 1: the cluster, and the harness's requests passed on to its workers. */
async function runPrimary(): Promise<never> {
  const primary = new Cluster(config, logger);
  const end = async () => process.exit((await primary.ended).code);
  process.on('SIGTERM', () => primary.stop('SIGTERM'));
  process.on('SIGINT', () => primary.stop('SIGINT'));
  process.on('disconnect', () => primary.stop('SIGTERM'));
  try {
    await primary.start();
  } catch (err) {
    process.stderr.write(`agent-idp cluster did not start: ${(err as Error).message}\n`);
    return end();
  }
  let nextId = 1;
  const ask = (worker: Worker, request: ServerRequest) =>
    new Promise<ServerReply>((resolve, reject) => {
      const id = nextId++;
      const onMessage = (reply: ServerReply) => {
        if (!('id' in reply) || reply.id !== id) return;
        worker.off('message', onMessage);
        if (reply.type === 'failed') reject(new Error(reply.message));
        else resolve(reply);
      };
      worker.on('message', onMessage);
      worker.send({ ...request, id });
    });
  process.on('message', (request: ServerRequest) => {
    const workers = primary.serving();
    const answer = async (): Promise<ServerReply> => {
      if (request.type !== 'heap') return { ...(await ask(workers[0], request)), id: request.id } as ServerReply;
      const heaps = (await Promise.all(workers.map((w) => ask(w, request)))) as Extract<ServerReply, { type: 'heap' }>[];
      const sum = (key: 'heapUsedMb' | 'rssMb' | 'externalMb') => heaps.reduce((total, h) => total + h[key], 0);
      const own = process.memoryUsage();
      const mb = (n: number) => n / 1024 / 1024;
      return {
        type: 'heap',
        id: request.id,
        heapUsedMb: sum('heapUsedMb') + mb(own.heapUsed),
        rssMb: sum('rssMb') + mb(own.rss),
        externalMb: sum('externalMb') + mb(own.external),
      };
    };
    answer().then(send, (err: Error) => send({ type: 'failed', id: request.id, message: err.stack ?? err.message }));
  });
  send(ready(`http://127.0.0.1:${port}`));
  return end();
}
