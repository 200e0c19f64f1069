import { log } from '../common.ts';
import { expect, http } from '../fixtures.ts';
import { measure } from '../measure.ts';
import { describe, noFailures } from '../report.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// The management listing, agent-idp only: the reference has no management API.

export async function agentsScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const path = '/api/v1/agents?limit=20';
  const first = await http(phase.idp.url, 'GET', path, { bearer: phase.fixtures.adminToken });
  await expect('the agents page holds 20 agents', async () => first.status === 200 && first.body.data.length === 20);
  const agentIdp = await measure(
    ctx,
    phase.idp,
    phase.db,
    {
      connections: ctx.options.connections,
      duration: ctx.options.duration,
      warmup: ctx.options.warmup,
      requests: [{ method: 'GET', path, headers: { authorization: `Bearer ${phase.fixtures.adminToken}` } }],
    },
    ctx.options.profile ? `agents-${phase.alg}` : undefined,
  );
  log(`agents ${describe(agentIdp)}`);
  return {
    scenario: 'agents',
    label: 'GET /api/v1/agents',
    alg: phase.alg,
    agentIdp,
    targets: [noFailures(agentIdp)],
    notes: [`page of 20 out of ${first.body.total} agents in the org; bearer token checked on every request; the reference has no management API`],
  };
}
