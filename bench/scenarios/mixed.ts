import { randomBytes } from 'node:crypto';
import { accessToken, createOrg } from '../../test/factories.ts';
import { BENCH_SCOPE, FORM, allCpus, basic, setAffinity, type PoolEntry, type RequestTemplate, type ServerReply } from '../lib.ts';
import { log, round } from '../common.ts';
import { AGENT_BODY, TOKEN_BODY } from '../fixtures.ts';
import { measure } from '../measure.ts';
import { describe, noFailures } from '../report.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// /token round-robin over many agents (--mixed-agents), agent-idp only: a first pass in which
// each pays its bcrypt compare, then the steady state. The soak reuses the same agents.

export async function ensureMixedAgents(ctx: Context, phase: Phase): Promise<{ clientId: string; clientSecret: string }[]> {
  if (phase.mixed) return phase.mixed;
  const { options } = ctx;
  // createOrg also gets the new org's admin a token, unused here: one bcrypt compare, before anything is measured.
  const org = await createOrg({ url: phase.idp.url, operator: phase.fixtures.operator }, `bench-mixed-${randomBytes(4).toString('hex')}`);
  log(
    `mixed: seeding ${options.mixedAgents} agents with one secret each (bcrypt cost ${options.mixedBcryptCost}) through the server's AgentsService.build + CredentialsService.mint`,
  );
  if (ctx.pinning.servers) setAffinity(phase.idp.pid, allCpus());
  let reply: ServerReply;
  try {
    reply = await phase.idp.request({ type: 'seed', id: 0, orgId: org.orgId, count: options.mixedAgents, bcryptCost: options.mixedBcryptCost, ...AGENT_BODY });
  } finally {
    if (ctx.pinning.servers) setAffinity(phase.idp.pid, ctx.pinning.servers);
  }
  if (reply.type !== 'seeded') throw new Error('seeding failed');
  log(`mixed: seeded in ${round(reply.ms / 1000, 1)} s`);
  phase.mixed = reply.agents;
  const probe = reply.agents[0];
  await accessToken(phase.idp, probe.clientId, probe.clientSecret, { scope: BENCH_SCOPE });
  return reply.agents;
}

export async function mixedScenario(ctx: Context, phase: Phase, tokenResult: ScenarioResult | undefined): Promise<ScenarioResult[]> {
  const { options } = ctx;
  const agents = await ensureMixedAgents(ctx, phase);
  const pool: PoolEntry[] = agents.map((c) => ({ headers: { authorization: basic(c.clientId, c.clientSecret) } }));
  const requests: RequestTemplate[] = [{ method: 'POST', path: '/token', headers: { 'content-type': FORM }, body: TOKEN_BODY, pool: 'mixed' }];
  // First pass: every agent once, each paying its bcrypt compare (unmeasured warm-up of the
  // secret memory, reported on its own).
  // (At most two minutes: with a high --mixed-bcrypt-cost the rest is verified in the measured run.)
  const firstPass = await measure(ctx, phase.idp, phase.db, {
    connections: options.connections,
    duration: 120,
    warmup: 0,
    amount: agents.length,
    requests,
    pools: { mixed: pool },
    timeoutSeconds: 60,
  });
  log(`mixed first pass ${describe(firstPass)}`);
  const agentIdp = await measure(
    ctx,
    phase.idp,
    phase.db,
    { connections: options.connections, duration: options.duration, warmup: 0, requests, pools: { mixed: pool } },
    options.profile ? `mixed-${phase.alg}` : undefined,
  );
  log(`mixed ${describe(agentIdp)}`);
  const secretCost = `secrets of bcrypt cost ${options.mixedBcryptCost}, not the production 10 (so that 10,000 can be created in seconds)`;
  const first: ScenarioResult = {
    scenario: 'mixed-first-pass',
    label: `mixed: 1st pass (${agents.length} cold)`,
    alg: phase.alg,
    agentIdp: firstPass,
    targets: [noFailures(firstPass)],
    notes: [`each of the ${agents.length} agents once, each paying one bcrypt compare; ${secretCost}`],
  };
  const ref = tokenResult?.reference;
  const steady: ScenarioResult = {
    scenario: 'mixed',
    label: `mixed: ${agents.length} agents`,
    alg: phase.alg,
    agentIdp,
    ...(ref ? { baseline: { label: `reference /token ${phase.alg} (one client; for information)`, rps: ref.rps }, ratio: agentIdp.rps / ref.rps } : {}),
    targets: [noFailures(agentIdp)],
    notes: [
      `round-robin /token over the ${agents.length} agents after the first pass (the secret memory keeps an entry ${process.env.SECRET_MEMORY_SECONDS ?? 60} s)`,
    ],
  };
  return [first, steady];
}
