import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { agentWithSecret } from '../../test/factories.ts';
import { FORM, allCpus, basic, pinned, setAffinity, type PoolEntry } from '../lib.ts';
import { BENCH_DIR, ROOT, log, round } from '../common.ts';
import { AGENT_BODY, TOKEN_BODY, inParallel } from '../fixtures.ts';
import { measure } from '../measure.ts';
import { describe, noFailures } from '../report.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// Cold /token: every request a secret agent-idp has never checked, so each pays one bcrypt
// compare; judged against what the servers' core can do (bench/bcrypt-probe.ts), agent-idp only.

async function bcryptProbe(ctx: Context, cost: number): Promise<{ medianMs: number; minMs: number }> {
  const [command, args] = pinned(ctx.pinning.servers, process.execPath, [join(BENCH_DIR, 'bcrypt-probe.ts'), String(cost), '12']);
  const out = execFileSync(command, args, { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

export async function coldScenario(ctx: Context, phase: Phase, bcryptCost: number): Promise<ScenarioResult> {
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
      (i) => agentWithSecret(phase.idp, phase.fixtures.adminToken, { name: `bench-cold-${i}`, ...AGENT_BODY }),
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
