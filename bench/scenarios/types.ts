import type { ProfileSummary } from '../profile.ts';
import type { BenchDatabase, Pinning, ServerHandle } from '../servers.ts';
import type { Fixtures } from '../fixtures.ts';

// The shapes every scenario (bench/scenarios/*.ts) works with: what a run was asked for
// (Options, Context), the servers of one signing algorithm (Phase), and what a scenario returns
// (ScenarioResult of Measurements and Targets), which bench/report.ts prints and writes.

// The one value here: the Scenario type is read off it, and it fixes the order scenarios run in.
export const SCENARIOS = ['jwks', 'token', 'steady', 'keys', 'exchange', 'federation', 'introspect', 'agents', 'cold', 'mixed', 'soak'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface Options {
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
  /** agent-idp's WORKERS (1: one process, as by default). */
  workers: number;
}

export interface Measurement {
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
  /** Date.now() at the start of the first round's measurement. */
  startedAtMs: number | null;
  /** Responses in each whole second of the measured rounds, in order (rounds one after another). */
  perSecond: number[];
  /** The slowest response of each of those seconds, ms. */
  perSecondMaxMs: number[];
  profile?: { file: string; summary: ProfileSummary };
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean | null;
}

export interface ScenarioResult {
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
  /** The steady scenario's per-second rows (answers, agent-idp's timeline, database waits). */
  steady?: { timeline: unknown[] };
}

export interface Phase {
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

export interface Context {
  options: Options;
  pinning: Pinning;
  runId: string;
  profiles: string[];
  bcrypt?: { cost: number; medianMs: number; minMs: number; probesMs: number[]; serverCores: number; boundRps: number };
}
