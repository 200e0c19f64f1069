import { FORM, basic, type PoolEntry, type RequestTemplate } from '../lib.ts';
import { log, round } from '../common.ts';
import { TOKEN_BODY } from '../fixtures.ts';
import { measure } from '../measure.ts';
import { describe, noFailures } from '../report.ts';
import { ensureMixedAgents } from './mixed.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// Minutes of every kind of request at once, agent-idp only: does its memory settle?

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
}

export async function soakScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const { options } = ctx;
  const agents = await ensureMixedAgents(ctx, phase);
  const { warm, rs, token, adminToken } = phase.fixtures;
  const mixedPool: PoolEntry[] = agents.map((c) => ({ headers: { authorization: basic(c.clientId, c.clientSecret) } }));
  const tokenOf = (pool?: string, authorization?: string): RequestTemplate => ({
    method: 'POST',
    path: '/token',
    headers: { 'content-type': FORM, ...(authorization ? { authorization } : {}) },
    body: TOKEN_BODY,
    ...(pool ? { pool } : {}),
  });
  // Each connection cycles through this mix: tokens for the 10,000 agents and the warm one,
  // introspection, JWKS and the management listing.
  const requests: RequestTemplate[] = [
    tokenOf('mixed'),
    tokenOf('mixed'),
    tokenOf(undefined, basic(warm.clientId, warm.clientSecret)),
    {
      method: 'POST',
      path: '/token/introspect',
      headers: { authorization: basic(rs.clientId, rs.clientSecret), 'content-type': FORM },
      body: new URLSearchParams({ token }).toString(),
    },
    { method: 'GET', path: '/.well-known/jwks.json' },
    { method: 'GET', path: '/api/v1/agents?limit=20', headers: { authorization: `Bearer ${adminToken}` } },
  ];
  const idle = await phase.idp.request({ type: 'heap', id: 0, gc: true });
  // One minute of the same traffic first, unmeasured: the bounded memories (secret memory,
  // agents and credentials of the 10,000 agents) fill up once; growth is judged after that.
  log('soak: 60 s of warm-up traffic (fills the bounded in-memory state)');
  await measure(ctx, phase.idp, phase.db, {
    connections: options.connections,
    duration: 60,
    warmup: 0,
    requests,
    pools: { mixed: mixedPool },
    sampleEvery: 5,
    timeoutSeconds: 60,
  });
  const before = await phase.idp.request({ type: 'heap', id: 0, gc: true });
  const seconds = Math.round(options.soakMinutes * 60);
  log(`soak: ${seconds} s of mixed traffic, RSS sampled every 5 s`);
  const agentIdp = await measure(ctx, phase.idp, phase.db, {
    connections: options.connections,
    duration: seconds,
    warmup: 0,
    requests,
    pools: { mixed: mixedPool },
    sampleEvery: 5,
    timeoutSeconds: 60,
  });
  const after = await phase.idp.request({ type: 'heap', id: 0, gc: true });
  log(`soak ${describe(agentIdp)}`);
  const samples = agentIdp.rssSamples;
  const window = (from: number, to: number) => samples.filter((s) => s.t >= from * seconds && s.t <= to * seconds).map((s) => s.rssMb);
  const early = median(window(0.1, 0.3));
  const late = median(window(0.8, 1));
  const growth = late - early;
  const heapIdle = idle.type === 'heap' ? idle.heapUsedMb : 0;
  const heapBefore = before.type === 'heap' ? before.heapUsedMb : 0;
  const heapAfter = after.type === 'heap' ? after.heapUsedMb : 0;
  const allowed = Math.max(10, early * 0.05);
  return {
    scenario: 'soak',
    label: `soak ${options.soakMinutes} min`,
    alg: phase.alg,
    agentIdp,
    targets: [
      {
        name: `RSS growth over ${options.soakMinutes} min (median of 10–30 % vs 80–100 % of the run)`,
        goal: `≤ max(10 MB, 5 %)`,
        value: `${round(early, 1)} → ${round(late, 1)} MB (${growth >= 0 ? '+' : ''}${round(growth, 1)} MB)`,
        met: options.soakMinutes >= 10 ? growth <= allowed : null,
      },
      {
        name: 'heap after full GC, after the warm-up minute → after the soak',
        goal: '≤ +10 MB',
        value: `${round(heapBefore, 1)} → ${round(heapAfter, 1)} MB (${round(heapIdle, 1)} MB before any traffic)`,
        met: heapAfter - heapBefore <= 10,
      },
      noFailures(agentIdp),
    ],
    notes: options.soakMinutes >= 10 ? [] : [`shorter than the 10 minutes of the target: growth reported, not judged`],
  };
}
