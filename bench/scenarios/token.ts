import { accessToken } from '../../test/factories.ts';
import { BENCH_SCOPE, FORM, basic, type RequestTemplate } from '../lib.ts';
import { log, round } from '../common.ts';
import { TOKEN_BODY, expect, referenceToken } from '../fixtures.ts';
import { measureAll } from '../measure.ts';
import { cpuRatioOf, describe, noFailures, ratioTarget } from '../report.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// Warm /token: one agent whose secret agent-idp has already checked, against one static client
// of the reference, both signing a JWT with the phase's algorithm.

function jwtHeader(token: string): { alg?: string; typ?: string } {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8'));
}

/** The load of a warm /token: the same client_credentials request, Basic-authenticated, on every connection. */
export function warmTokenJob(ctx: Context, authorization: string, duration = ctx.options.duration) {
  const request: RequestTemplate = { method: 'POST', path: '/token', headers: { authorization, 'content-type': FORM }, body: TOKEN_BODY };
  return { connections: ctx.options.connections, duration, warmup: ctx.options.warmup, requests: [request] };
}

export async function tokenScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const { warm } = phase.fixtures;
  const job = (authorization: string) => warmTokenJob(ctx, authorization);
  // One warm-up request each (the only bcrypt compare of agent-idp's run), checked.
  const mine = await accessToken(phase.idp, warm.clientId, warm.clientSecret, { scope: BENCH_SCOPE });
  const theirs = await referenceToken(phase.ref.url, 'bench-client', phase.refSecrets.client, { scope: BENCH_SCOPE });
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
      ratioTarget(`warm /token ${phase.alg} req/s`, ratio, cpuRatio, 0.9),
      {
        name: `p99 of warm /token ${phase.alg} (${ctx.options.connections} connections)`,
        // Closed-loop latency follows throughput (Little's law), so the bound is the reference's own p99 of the same rounds.
        goal: '≤ 1.2 × the reference p99, at 32 connections',
        value: `${agentIdp.p99} ms (reference ${reference.p99} ms: ${round(agentIdp.p99 / reference.p99)} ×)`,
        met: ctx.options.connections === 32 ? agentIdp.p99 <= 1.2 * reference.p99 : null,
      },
      noFailures(agentIdp),
    ],
    notes: [],
  };
}
