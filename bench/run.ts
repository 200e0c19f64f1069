import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { RESULTS_DIR, cleanups, log } from './common.ts';
import { choosePinning, startPhase, stopPhase } from './servers.ts';
import { writeReport, type PhaseInfo } from './report.ts';
import { SCENARIOS, type Context, type Options, type Scenario, type ScenarioResult } from './scenarios/types.ts';
import { jwksScenario } from './scenarios/jwks.ts';
import { tokenScenario } from './scenarios/token.ts';
import { steadyScenario } from './scenarios/steady.ts';
import { keysScenario } from './scenarios/keys.ts';
import { exchangeScenario } from './scenarios/exchange.ts';
import { federationScenario } from './scenarios/federation.ts';
import { introspectScenario } from './scenarios/introspect.ts';
import { agentsScenario } from './scenarios/agents.ts';
import { coldScenario } from './scenarios/cold.ts';
import { mixedScenario } from './scenarios/mixed.ts';
import { soakScenario } from './scenarios/soak.ts';
import { SIGNING_ALGS } from '../config/index.ts';

// `npm run bench`: agent-idp side by side with a bare oidc-provider (bench/reference-server.ts).
// Each server runs in a process of its own, both pinned to the same core; the load generator
// (bench/load.ts, autocannon) runs in a third process on another core. For every scenario:
// req/s, p50, p99, non-2xx, server CPU ms per request, RSS, and agent-idp / reference from the
// same run. Results are printed and written to bench/results/<timestamp>.json.
// See bench/README.md.
//
// This file: the options, the run (one phase per signing algorithm, its scenarios in order) and
// the clean-up. servers.ts starts the processes, fixtures.ts sets agent-idp up through its API,
// measure.ts drives the load, scenarios/*.ts are the scenarios, report.ts prints and writes.

const DEFAULT_SCENARIOS: Scenario[] = ['jwks', 'token', 'steady', 'keys', 'exchange', 'federation', 'introspect', 'agents', 'cold', 'mixed'];

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
  --workers N         run agent-idp with WORKERS=N (a cluster; needs DATABASE_URL); with N > 1
                      both servers are pinned to every core, the load generator's too
  --no-pin            do not pin processes to cores
  -h, --help

  DATABASE_URL set: agent-idp runs on a new database of that PostgreSQL server (dropped at
  the end); unset: on the embedded PGlite in a temporary DATA_DIR.`;

// ---------------------------------------------------------------------------------------------
// options

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
      workers: { type: 'string' },
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
  for (const a of algs) if (!(SIGNING_ALGS as readonly string[]).includes(a)) throw new Error(`--alg must be one of ${SIGNING_ALGS.join(', ')}, got "${a}"`);
  const quick = values.quick === true;
  const workers = number('workers', values.workers, 1, 1, 64);
  if (!Number.isInteger(workers)) throw new Error(`--workers must be a whole number, got "${values.workers}"`);
  if (workers > 1 && !process.env.DATABASE_URL) throw new Error('--workers above 1 needs DATABASE_URL: the embedded database serves one process');
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
    workers,
  };
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
  const pinning = choosePinning(options.pin, cores, options.workers);
  const ctx: Context = { options, pinning, runId, profiles: [] };
  const loadBefore = loadavg();
  log(
    `run ${runId}: ${options.scenarios.join(', ')}; ${options.duration} s each (+${options.warmup} s warm-up), ${options.connections} connections; ` +
      (options.workers > 1 ? `agent-idp with ${options.workers} workers; ` : '') +
      (pinning.servers ? `servers on core ${pinning.servers}, load generator on core ${pinning.load}` : 'no CPU pinning') +
      `; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const results: ScenarioResult[] = [];
  const phaseInfo: PhaseInfo[] = [];
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
          case 'steady':
            results.push(await steadyScenario(ctx, phase));
            break;
          case 'keys':
            results.push(...(await keysScenario(ctx, phase)));
            break;
          case 'exchange':
            results.push(await exchangeScenario(ctx, phase));
            break;
          case 'federation':
            results.push(await federationScenario(ctx, phase));
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

  process.stdout.write(writeReport({ ctx, startedAt, cores, loadBefore, database, phases: phaseInfo, results }));
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
