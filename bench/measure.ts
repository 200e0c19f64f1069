import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { formatProfile, summarizeProfile } from './profile.ts';
import { merge, newHistogram, percentile, pinned, processCpuMs, type LatencyHistogram, type LoadJob, type LoadMessage, type LoadResult } from './lib.ts';
import { BENCH_DIR, RESULTS_DIR, ROOT, cleanups, round } from './common.ts';
import type { BenchDatabase, Pinning, ServerHandle } from './servers.ts';
import type { Context, Measurement } from './scenarios/types.ts';

// Load on a server and what it cost: the load generator (bench/load.ts) in a process of its
// own, the server's and its database backends' CPU time around it, and the interleaved rounds
// of two servers measured side by side.

export interface Load {
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
  startedAtMs: number | undefined;
  perSecond: number[];
  perSecondMaxMs: number[];
}

/** One load run against one server, with the CPU time of its database backends around it. */
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
export async function measureAll(ctx: Context, loads: Load[], profileName?: string): Promise<Measurement[]> {
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
    startedAtMs: undefined,
    perSecond: [],
    perSecondMaxMs: [],
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
      t.startedAtMs ??= result.startedAtMs;
      t.perSecond.push(...result.perSecond);
      t.perSecondMaxMs.push(...result.perSecondMaxMs);
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
      startedAtMs: t.startedAtMs ?? null,
      perSecond: t.perSecond,
      perSecondMaxMs: t.perSecondMaxMs,
      ...(i === 0 && profile ? { profile } : {}),
    };
  });
}

export async function measure(
  ctx: Context,
  server: ServerHandle,
  db: BenchDatabase | undefined,
  job: Omit<LoadJob, 'url' | 'serverPid'>,
  profileName?: string,
): Promise<Measurement> {
  const [m] = await measureAll(ctx, [{ server, db, job }], profileName);
  return m;
}
