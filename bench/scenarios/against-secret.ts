import { accessToken } from '../../test/factories.ts';
import { BENCH_SCOPE, FORM, basic, type RequestTemplate } from '../lib.ts';
import { log } from '../common.ts';
import { TOKEN_BODY } from '../fixtures.ts';
import { measureAll } from '../measure.ts';
import { describe, noFailures } from '../report.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// What the scenarios of the other grants share (keys, exchange, federation): each is measured
// in interleaved rounds with agent-idp's own warm secret /token, and judged against it.

/** The warm agent's secret /token (its secret is checked once, before the rounds: measureAgainstWarmSecret). */
export function warmSecretRequest(phase: Phase): RequestTemplate {
  const { warm } = phase.fixtures;
  return { method: 'POST', path: '/token', headers: { authorization: basic(warm.clientId, warm.clientSecret), 'content-type': FORM }, body: TOKEN_BODY };
}

export interface GrantLoad {
  /** As it appears in the log and the target's name, e.g. "private_key_jwt". */
  label: string;
  request: RequestTemplate;
  notes: string[];
}

/** One ScenarioResult per load: its req/s against the warm secret /token of the same rounds, with `goal` as the target. */
export async function measureAgainstWarmSecret(ctx: Context, phase: Phase, scenario: string, goal: number, loads: GrantLoad[]): Promise<ScenarioResult[]> {
  const { warm } = phase.fixtures;
  // The one bcrypt compare of the warm agent, outside the measurement.
  await accessToken(phase.idp, warm.clientId, warm.clientSecret, { scope: BENCH_SCOPE });
  const job = (request: RequestTemplate) => ({
    connections: ctx.options.connections,
    duration: ctx.options.duration,
    warmup: ctx.options.warmup,
    requests: [request],
  });
  const [secret, ...measured] = await measureAll(
    ctx,
    [warmSecretRequest(phase), ...loads.map((l) => l.request)].map((request) => ({ server: phase.idp, db: phase.db, job: job(request) })),
    ctx.options.profile ? `token-${scenario}-${phase.alg}` : undefined,
  );
  log(`${scenario}: warm secret /token ${describe(secret)}`);
  return loads.map((load, i) => {
    const m = measured[i];
    log(`${scenario}: ${load.label} ${describe(m)}`);
    const ratio = m.rps / secret.rps;
    return {
      scenario,
      label: `/token warm ${load.label} (${phase.alg} tokens)`,
      alg: phase.alg,
      agentIdp: m,
      baseline: { label: `agent-idp warm secret /token: ${secret.rps} req/s`, rps: secret.rps },
      ratio,
      targets: [
        { name: `warm /token with ${load.label} req/s`, goal: `≥ ${goal} × warm secret /token`, value: `${Math.round(ratio * 100) / 100}`, met: ratio >= goal },
        noFailures(m),
      ],
      notes: load.notes,
    };
  });
}
