import { FORM, basic, type RequestTemplate } from '../lib.ts';
import { log } from '../common.ts';
import { expect, http } from '../fixtures.ts';
import { measureAll } from '../measure.ts';
import { cpuRatioOf, describe, noFailures, ratioTarget } from '../report.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// POST /token/introspect: agent-idp's JWT against the reference's opaque token.

export async function introspectScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const { rs, token } = phase.fixtures;
  const mineBody = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
  const theirsBody = new URLSearchParams({ token: phase.refOpaqueToken, token_type_hint: 'access_token' }).toString();
  const check = async () => {
    const [a, b] = await Promise.all([
      http(phase.idp.url, 'POST', '/token/introspect', { basic: [rs.clientId, rs.clientSecret], form: { token, token_type_hint: 'access_token' } }),
      http(phase.ref.url, 'POST', '/token/introspect', {
        basic: ['bench-rs', phase.refSecrets.rs],
        form: { token: phase.refOpaqueToken, token_type_hint: 'access_token' },
      }),
    ]);
    return a.status === 200 && a.body.active === true && b.status === 200 && b.body.active === true;
  };
  await expect('both introspect their token as active', check);
  const job = (authorization: string, body: string) => ({
    connections: ctx.options.connections,
    duration: ctx.options.duration,
    warmup: ctx.options.warmup,
    requests: [{ method: 'POST', path: '/token/introspect', headers: { authorization, 'content-type': FORM }, body } as RequestTemplate],
  });
  const [agentIdp, reference] = await measureAll(
    ctx,
    [
      { server: phase.idp, db: phase.db, job: job(basic(rs.clientId, rs.clientSecret), mineBody) },
      { server: phase.ref, db: undefined, job: job(basic('bench-rs', phase.refSecrets.rs), theirsBody) },
    ],
    ctx.options.profile ? `introspect-${phase.alg}` : undefined,
  );
  log(`introspect ${describe(agentIdp)}`);
  log(`introspect ${describe(reference)}`);
  await expect('both still introspect their token as active', check);
  const ratio = agentIdp.rps / reference.rps;
  const cpuRatio = cpuRatioOf(agentIdp, reference);
  return {
    scenario: 'introspect',
    label: 'introspection',
    alg: phase.alg,
    agentIdp,
    reference,
    baseline: { label: 'reference opaque introspection', rps: reference.rps },
    ratio,
    cpuRatio,
    targets: [ratioTarget('introspection req/s', ratio, cpuRatio, 1.0), noFailures(agentIdp)],
    notes: [
      `agent-idp introspects a ${phase.alg} JWT (signature, claims, revocation and agent state in PostgreSQL); the reference an opaque token from memory`,
    ],
  };
}
