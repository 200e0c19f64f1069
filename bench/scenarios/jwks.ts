import type { RequestTemplate } from '../lib.ts';
import { log } from '../common.ts';
import { expect, http } from '../fixtures.ts';
import { measureAll } from '../measure.ts';
import { cpuRatioOf, describe, noFailures, ratioTarget } from '../report.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// GET /.well-known/jwks.json on both servers, publishing as many keys.

export async function jwksScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const job = {
    connections: ctx.options.connections,
    duration: ctx.options.duration,
    warmup: ctx.options.warmup,
    requests: [{ method: 'GET', path: '/.well-known/jwks.json' } as RequestTemplate],
  };
  const [a, b] = await Promise.all([http(phase.idp.url, 'GET', '/.well-known/jwks.json'), http(phase.ref.url, 'GET', '/.well-known/jwks.json')]);
  await expect('both servers publish a JWKS of as many keys', async () => a.status === 200 && b.status === 200 && a.body.keys.length === b.body.keys.length);
  const [agentIdp, reference] = await measureAll(
    ctx,
    [
      { server: phase.idp, db: phase.db, job },
      { server: phase.ref, db: undefined, job },
    ],
    ctx.options.profile ? `jwks-${phase.alg}` : undefined,
  );
  log(`jwks ${describe(agentIdp)}`);
  log(`jwks ${describe(reference)}`);
  const ratio = agentIdp.rps / reference.rps;
  const cpuRatio = cpuRatioOf(agentIdp, reference);
  return {
    scenario: 'jwks',
    label: 'JWKS',
    alg: phase.alg,
    agentIdp,
    reference,
    baseline: { label: 'reference JWKS', rps: reference.rps },
    ratio,
    cpuRatio,
    targets: [ratioTarget('JWKS req/s', ratio, cpuRatio, 1.0), noFailures(agentIdp)],
    notes: [`${a.body.keys.length} published keys on both`],
  };
}
