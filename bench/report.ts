import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { RESULTS_DIR, ROOT, round } from './common.ts';
import { SERVER_NODE_FLAGS } from './servers.ts';
import type { Context, Measurement, ScenarioResult, Target } from './scenarios/types.ts';

// What a run reports: the one-line summaries logged as it goes, the targets each scenario
// judges, and at the end the tables on stdout and bench/results/<run>.json.

export function describe(m: Measurement): string {
  const failures = m.non2xx + m.errors;
  return `${m.server}: ${m.rps} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms${failures ? `, ${failures} failed` : ''}, ${m.cpuMsPerReq ?? '?'} CPU ms/req`;
}

export function cpuRatioOf(agentIdp: Measurement, reference: Measurement): number | undefined {
  return agentIdp.cpuMsPerReq && reference.cpuMsPerReq ? reference.cpuMsPerReq / agentIdp.cpuMsPerReq : undefined;
}

export function ratioTarget(name: string, ratio: number, cpuRatio: number | undefined, goal = 0.8): Target {
  const cpu = cpuRatio === undefined ? '' : ` (CPU-normalised ${round(cpuRatio)})`;
  return { name, goal: `≥ ${goal} × reference`, value: `${round(ratio)}${cpu}`, met: ratio >= goal };
}

export function noFailures(m: Measurement): Target {
  const failed = m.non2xx + m.errors;
  return { name: 'every request answered 2xx', goal: '0 failed', value: String(failed), met: failed === 0 };
}

// ---------------------------------------------------------------------------------------------
// tables

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
// the end of a run

export interface PhaseInfo {
  alg: string;
  agentIdp: { pid: number; idleRssMb: number | null };
  reference: { pid: number; idleRssMb: number | null };
}

export interface Run {
  ctx: Context;
  startedAt: Date;
  cores: number;
  loadBefore: number[];
  database: string;
  phases: PhaseInfo[];
  results: ScenarioResult[];
}

/** Adds the targets of the whole run, writes bench/results/<run>.json and returns the text for stdout. */
export function writeReport({ ctx, startedAt, cores, loadBefore, database, phases, results }: Run): string {
  const { options, pinning, runId } = ctx;
  // Memory: the highest RSS agent-idp reached under load, with one agent and with the 10,000 of mixed and soak in memory.
  const manyAgents = (r: ScenarioResult) => r.scenario === 'mixed' || r.scenario === 'soak';
  const targets: (Target & { scenario: string })[] = results.flatMap((r) => r.targets.map((t) => ({ ...t, scenario: r.label })));
  for (const [many, bound, label] of [
    [false, 250, 'one agent'],
    [true, 300, `${options.mixedAgents} agents in memory`],
  ] as const) {
    const measured = results.filter((r) => manyAgents(r) === many && r.agentIdp.rssMbMax !== null);
    if (!measured.length) continue;
    const rssMax = Math.max(...measured.map((r) => r.agentIdp.rssMbMax ?? 0));
    targets.push({
      scenario: 'all',
      name: `agent-idp RSS under load, ${label} (highest sample)`,
      goal: `< ${bound} MB`,
      value: `${round(rssMax, 1)} MB`,
      met: rssMax < bound,
    });
  }
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
    phases,
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
  return out.join('\n') + '\n';
}
