import { accessToken } from '../../test/factories.ts';
import { BENCH_SCOPE, basic, type ServerReply, type TimelineSecond } from '../lib.ts';
import { warmTokenJob } from './token.ts';
import { log, round } from '../common.ts';
import { referenceToken } from '../fixtures.ts';
import { measure } from '../measure.ts';
import { describe, noFailures } from '../report.ts';
import type { Context, Measurement, Phase, ScenarioResult } from './types.ts';

// Warm /token without a break for a minute, each server on its own (not in rounds: a stall is
// what happens in one long stretch): does the throughput hold every second, and does any
// answer wait? The figures are the worst second against the average, and the slowest answer.

/** The bound: a minute of load, no second below half the average, no answer over 250 ms. */
export const STEADY_SECONDS = 60;
const WORST_SECOND_SHARE = 0.5;
const SLOWEST_ANSWER_MS = 250;

export interface Steadiness {
  seconds: number;
  average: number;
  worstSecond: number;
  /** Which second (0-based) was the worst. */
  worstAt: number;
  slowestMs: number;
  slowestAt: number;
}

export function steadiness(m: Measurement): Steadiness {
  const counts = m.perSecond;
  const average = counts.length ? counts.reduce((a, b) => a + b, 0) / counts.length : 0;
  let worstAt = 0;
  let slowestAt = 0;
  counts.forEach((n, i) => {
    if (n < counts[worstAt]) worstAt = i;
  });
  m.perSecondMaxMs.forEach((ms, i) => {
    if (ms > m.perSecondMaxMs[slowestAt]) slowestAt = i;
  });
  return {
    seconds: counts.length,
    average: round(average, 1),
    worstSecond: counts[worstAt] ?? 0,
    worstAt,
    slowestMs: round(m.max, 1),
    slowestAt,
  };
}

const summary = (s: Steadiness) =>
  `average ${s.average} req/s over ${s.seconds} s, worst second ${s.worstSecond} (second ${s.worstAt}, ${round(s.worstSecond / (s.average || 1))} of the average), slowest answer ${s.slowestMs} ms (second ${s.slowestAt})`;

export async function steadyScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const { warm } = phase.fixtures;
  const seconds = ctx.options.quick ? 10 : STEADY_SECONDS;
  const job = (authorization: string) => warmTokenJob(ctx, authorization, seconds);
  // The warm agent's secret checked once, as in `token`.
  await accessToken(phase.idp, warm.clientId, warm.clientSecret, { scope: BENCH_SCOPE });
  await referenceToken(phase.ref.url, 'bench-client', phase.refSecrets.client, { scope: BENCH_SCOPE });
  log(`steady ${phase.alg}: ${seconds} s of warm /token on each server, one after the other`);
  // While agent-idp is measured: its own timeline, and what its database backends wait on (5 samples a second).
  await phase.idp.request({ type: 'timeline-start', id: 0 });
  const waits = sampleWaits(phase.db.waits);
  let agentIdp: Measurement;
  let timeline: TimelineSecond[];
  try {
    agentIdp = await measure(ctx, phase.idp, phase.db, job(basic(warm.clientId, warm.clientSecret)), ctx.options.profile ? `steady-${phase.alg}` : undefined);
  } finally {
    waits.stop();
    const reply = (await phase.idp.request({ type: 'timeline-stop', id: 0 })) as Extract<ServerReply, { type: 'timeline' }>;
    timeline = reply.seconds;
  }
  const reference = await measure(ctx, phase.ref, undefined, job(basic('bench-client', phase.refSecrets.client)));
  const mine = steadiness(agentIdp);
  const theirs = steadiness(reference);
  log(`steady ${phase.alg} ${describe(agentIdp)}; ${summary(mine)}`);
  log(`steady ${phase.alg} ${describe(reference)}; ${summary(theirs)}`);
  const seconds_ = explainSeconds(agentIdp, timeline, waits.samples);
  for (const line of seconds_.worst) log(`steady ${phase.alg} agent-idp ${line}`);
  const judged = seconds >= STEADY_SECONDS && ctx.options.connections === 32;
  return {
    scenario: 'steady',
    label: `/token warm ${phase.alg}, ${seconds} s`,
    alg: phase.alg,
    agentIdp,
    reference,
    baseline: { label: `reference /token ${phase.alg}, ${seconds} s`, rps: reference.rps },
    ratio: agentIdp.rps / reference.rps,
    targets: [
      {
        name: `worst second of ${seconds} s of warm /token ${phase.alg}`,
        goal: `≥ ${WORST_SECOND_SHARE} × the average, over ${STEADY_SECONDS} s`,
        value: `${mine.worstSecond} of ${mine.average} req/s (${round(mine.worstSecond / (mine.average || 1))}); reference ${theirs.worstSecond} of ${theirs.average} (${round(theirs.worstSecond / (theirs.average || 1))})`,
        met: judged ? mine.worstSecond >= WORST_SECOND_SHARE * mine.average : null,
      },
      {
        name: `slowest answer in ${seconds} s of warm /token ${phase.alg}`,
        goal: `≤ ${SLOWEST_ANSWER_MS} ms, over ${STEADY_SECONDS} s at 32 connections`,
        value: `${mine.slowestMs} ms (reference ${theirs.slowestMs} ms)`,
        met: judged ? mine.slowestMs <= SLOWEST_ANSWER_MS : null,
      },
      noFailures(agentIdp),
    ],
    notes: [
      `steady: ${seconds} s on each server in one stretch; per-second counts in the JSON (perSecond, perSecondMaxMs; agent-idp's timeline in steady)`,
      ...seconds_.worst.map((line) => `steady agent-idp ${line}`),
    ],
    steady: { timeline: seconds_.rows },
  };
}

interface WaitSample {
  at: number;
  waits: string[];
}

/** Polls the database's wait events until stopped (the harness's own connection, on the load generator's core). */
function sampleWaits(read: (() => Promise<string[]>) | undefined) {
  const samples: WaitSample[] = [];
  let stopped = false;
  const loop = async () => {
    while (!stopped && read) {
      const at = Date.now();
      samples.push({ at, waits: await read().catch(() => ['(unreadable)']) });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  void loop();
  return {
    samples,
    stop() {
      stopped = true;
    },
  };
}

/** One row per measured second: answers, slowest, and what agent-idp's process and database did then; the worst five as text. */
function explainSeconds(m: Measurement, timeline: TimelineSecond[], waits: WaitSample[]) {
  const start = m.startedAtMs ?? 0;
  const rows = m.perSecond.map((answers, i) => {
    const from = start + i * 1000;
    // The process's second that overlaps this one most.
    const own = timeline.reduce<TimelineSecond | undefined>((best, t) => (!best || Math.abs(t.at - from) < Math.abs(best.at - from) ? t : best), undefined);
    const counted = new Map<string, number>();
    for (const w of waits) if (w.at >= from && w.at < from + 1000) for (const name of w.waits) counted.set(name, (counted.get(name) ?? 0) + 1);
    return { second: i, answers, slowestMs: m.perSecondMaxMs[i], process: own, dbWaits: Object.fromEntries(counted) };
  });
  const worst = [...rows]
    .sort((a, b) => a.answers - b.answers)
    .slice(0, 5)
    .sort((a, b) => a.second - b.second)
    .map((r) => {
      const p = r.process;
      const own = p
        ? `elu ${p.elu}, longest loop delay ${p.loopDelayMaxMs} ms, GC ${p.gcMs} ms (longest ${p.gcMaxMs}), ${p.auditBatches} audit INSERTs of ${p.auditMeanMs} ms mean, audit queue up to ${p.auditQueueMax}, caches unusable ${p.incoherent}/10`
        : 'no timeline';
      const db = Object.entries(r.dbWaits)
        .map(([name, n]) => `${name}×${n}`)
        .join(' ');
      return `second ${r.second}: ${r.answers} answers, slowest ${r.slowestMs} ms; ${own}; db waits ${db || 'none'}`;
    });
  return { rows, worst };
}
