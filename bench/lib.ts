import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

// Small helpers shared by the benchmark processes: CPU time and RSS of a process from /proc,
// CPU pinning with taskset, and the messages the processes exchange over their IPC channels.

let clockTicks: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, nearly always 100). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** The process and its live descendants (a cluster's primary and its workers), from the parent pids in /proc. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []));
  return tree;
}

/** User + system CPU time of a process (all its threads) and its live descendants, in ms; undefined when the process is unreadable. */
export function processCpuMs(pid: number): number | undefined {
  let total: number | undefined;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      total = (total ?? 0) + (ticks * 1000) / ticksPerSecond();
    } catch {
      if (p === pid) return undefined;
    }
  }
  return total;
}

/** Resident set size of a process and its live descendants in MB (shared pages counted in each), or undefined when unreadable. */
export function processRssMb(pid: number): number | undefined {
  let total: number | undefined;
  for (const p of processTree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
      if (match) total = (total ?? 0) + Number(match[1]) / 1024;
      else if (p === pid) return undefined;
    } catch {
      if (p === pid) return undefined;
    }
  }
  return total;
}

export function hasTaskset(): boolean {
  return spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;
}

/** Sets the CPU affinity of every thread of a running process ("1", "0-1"). */
export function setAffinity(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** The CPUs this machine lets us use, as a taskset list ("0-1"). */
export function allCpus(): string {
  return `0-${availableParallelism() - 1}`;
}

/** A command line, prefixed with taskset when a CPU list is given. */
export function pinned(cpus: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]];
}

// ---- load generator job (bench/load.ts) -------------------------------------------------

export interface RequestTemplate {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Name of a pool in LoadJob.pools: each request takes the pool's next entry (shared by every connection). */
  pool?: string;
  /** A one-time JWT made by the load generator for each request (bench/load.ts): none can be made ahead, as each is accepted once. */
  oneTimeJwt?: OneTimeJwt;
}

/**
 * A client assertion (RFC 7523 §2.2, put in the form), an external issuer's JWT for the
 * jwt-bearer grant (RFC 7523 §2.1, the form's `assertion`) or a DPoP proof (RFC 9449, the DPoP
 * header), signed with ES256 for each request. The private key is the bench's own test key.
 */
export type OneTimeJwt =
  | { kind: 'client_assertion'; privateKeyPem: string; kid: string; clientId: string; audience: string }
  | { kind: 'jwt_bearer'; privateKeyPem: string; kid: string; issuer: string; subject: string; audience: string }
  | { kind: 'dpop'; privateKeyPem: string; publicJwk: Record<string, string>; htu: string };

export interface PoolEntry {
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadJob {
  url: string;
  connections: number;
  /** Seconds of measurement. */
  duration: number;
  /** Seconds of unmeasured load before the measurement (0: none). */
  warmup: number;
  /** Stop after this many requests (whichever comes first with duration). */
  amount?: number;
  /** Requests of each connection, in turn. */
  requests: RequestTemplate[];
  pools?: Record<string, PoolEntry[]>;
  /** The server under load: its CPU time and RSS are read around and during the measurement. */
  serverPid: number;
  /** Seconds between RSS samples (default 1). */
  sampleEvery?: number;
  timeoutSeconds?: number;
}

export interface RssSample {
  t: number;
  rssMb: number;
}

/**
 * Latencies of every response, in buckets 1 % wide (bucket i holds ms in
 * [0.01 × 1.01^i, 0.01 × 1.01^(i+1))), so that the rounds of a scenario can be merged.
 */
export interface LatencyHistogram {
  buckets: Record<number, number>;
  count: number;
  sumMs: number;
  maxMs: number;
}

const BUCKET_BASE_MS = 0.01;
const BUCKET_GROWTH = Math.log(1.01);

export function newHistogram(): LatencyHistogram {
  return { buckets: {}, count: 0, sumMs: 0, maxMs: 0 };
}

export function record(h: LatencyHistogram, ms: number): void {
  const i = ms <= BUCKET_BASE_MS ? 0 : Math.floor(Math.log(ms / BUCKET_BASE_MS) / BUCKET_GROWTH);
  h.buckets[i] = (h.buckets[i] ?? 0) + 1;
  h.count++;
  h.sumMs += ms;
  if (ms > h.maxMs) h.maxMs = ms;
}

export function merge(into: LatencyHistogram, from: LatencyHistogram): void {
  for (const [i, n] of Object.entries(from.buckets)) into.buckets[Number(i)] = (into.buckets[Number(i)] ?? 0) + n;
  into.count += from.count;
  into.sumMs += from.sumMs;
  into.maxMs = Math.max(into.maxMs, from.maxMs);
}

/** The p-th percentile in ms (the middle of its bucket: within 0.5 %). */
export function percentile(h: LatencyHistogram, p: number): number {
  if (h.count === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * h.count));
  let seen = 0;
  for (const i of Object.keys(h.buckets)
    .map(Number)
    .sort((a, b) => a - b)) {
    seen += h.buckets[i];
    if (seen >= rank) return Math.min(h.maxMs, BUCKET_BASE_MS * Math.exp((i + 0.5) * BUCKET_GROWTH));
  }
  return h.maxMs;
}

export interface LoadResult {
  durationS: number;
  requests: number;
  latency: LatencyHistogram;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  serverCpuMs: number | undefined;
  rss: RssSample[];
  /** CPU time of the load generator during the measurement. */
  loadCpuMs: number;
  /** Date.now() when the measurement started: second 0 of perSecond. */
  startedAtMs: number;
  /** Responses completed in each whole second of the measurement (the last, partial second left out). */
  perSecond: number[];
  /** The slowest response completed in each of those seconds, ms. */
  perSecondMaxMs: number[];
}

export type LoadMessage = { type: 'measure-start' } | { type: 'result'; result: LoadResult } | { type: 'error'; message: string };

// ---- agent-idp server child (bench/agent-idp-server.ts) ---------------------------------

/** What agent-idp's process did in one wall-clock second (bench/agent-idp-server.ts, the steady scenario). */
export interface TimelineSecond {
  /** Date.now() at the start of the second. */
  at: number;
  /** Event-loop utilisation (0–1): near 0 in a stall, the process was waiting, not working. */
  elu: number;
  /** Longest event-loop delay seen (ms): a long one means something ran without yielding. */
  loopDelayMaxMs: number;
  /** Time in GC pauses (ms) and the longest pause. */
  gcMs: number;
  gcMaxMs: number;
  /** Audit INSERTs that finished in this second, their mean and the writer's largest queue depth seen (10 samples). */
  auditBatches: number;
  auditMeanMs: number;
  auditQueueMax: number;
  /** Samples (of 10) in which the caches could not answer (no lease, or the LISTEN connection down). */
  incoherent: number;
}

export type ServerRequest =
  | { type: 'seed'; id: number; orgId: string; count: number; bcryptCost: number; scopes: string[]; audiences: string[] }
  | { type: 'heap'; id: number; gc: boolean }
  | { type: 'profile-start'; id: number }
  | { type: 'profile-stop'; id: number; file: string }
  | { type: 'timeline-start'; id: number }
  | { type: 'timeline-stop'; id: number };

export type ServerReply =
  | { type: 'ready'; url: string; cores: number; database: string }
  | { type: 'seeded'; id: number; agents: { clientId: string; clientSecret: string }[]; ms: number }
  | { type: 'heap'; id: number; heapUsedMb: number; rssMb: number; externalMb: number }
  | { type: 'profile-started'; id: number }
  | { type: 'profile-stopped'; id: number; file: string }
  | { type: 'timeline'; id: number; seconds: TimelineSecond[] }
  | { type: 'failed'; id?: number; message: string };

export function basic(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

/** The audience of the benchmark's JWT access tokens (agent-idp agents are registered with it). */
export const JWT_RESOURCE = 'https://api.bench.example';
/** The reference server's resource with opaque tokens (for its introspection). */
export const OPAQUE_RESOURCE = 'https://opaque.bench.example';
export const BENCH_SCOPE = 'bench:read';

export const FORM = 'application/x-www-form-urlencoded';
