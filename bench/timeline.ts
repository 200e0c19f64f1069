import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Idp } from '../src/app/idp.ts';
import type { TimelineSecond } from './lib.ts';

// Inside agent-idp's bench process: what the process did each second while the steady scenario
// ran, so that a second in which few answers came out can be told apart: the event loop busy
// without yielding (a long task, a GC pause), or idle and waiting (on the audit INSERT, on a
// lost lease), or nothing unusual here at all (the load generator or the machine).

const SAMPLES_PER_SECOND = 10;

export class Timeline {
  readonly #idp: Idp;
  readonly #seconds: TimelineSecond[] = [];
  #timer: NodeJS.Timeout | undefined;
  #gc: PerformanceObserver | undefined;

  constructor(idp: Idp) {
    this.#idp = idp;
  }

  start(): void {
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    let gcMs = 0;
    let gcMaxMs = 0;
    this.#gc = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        gcMs += entry.duration;
        gcMaxMs = Math.max(gcMaxMs, entry.duration);
      }
    });
    this.#gc.observe({ entryTypes: ['gc'] });
    let elu = performance.eventLoopUtilization();
    let audit = { sum: 0, count: 0 };
    let queueMax = 0;
    let incoherent = 0;
    let samples = 0;
    let secondStart = Date.now();
    this.#timer = setInterval(() => {
      queueMax = Math.max(queueMax, this.#idp.auditWriter.queueDepth);
      if (this.#idp.coherence.enabled && !this.#idp.coherence.usable()) incoherent++;
      if (++samples < SAMPLES_PER_SECOND) return;
      samples = 0;
      const now = performance.eventLoopUtilization();
      const writes = auditWrites(this.#idp);
      void writes.then((w) => {
        const batches = w.count - audit.count;
        this.#seconds.push({
          at: secondStart,
          elu: Math.round(performance.eventLoopUtilization(now, elu).utilization * 100) / 100,
          loopDelayMaxMs: Math.round(delay.max / 1e5) / 10,
          gcMs: Math.round(gcMs),
          gcMaxMs: Math.round(gcMaxMs),
          auditBatches: batches,
          auditMeanMs: batches > 0 ? Math.round(((w.sum - audit.sum) / batches) * 10_000) / 10 : 0,
          auditQueueMax: queueMax,
          incoherent,
        });
        audit = w;
        elu = now;
        delay.reset();
        gcMs = 0;
        gcMaxMs = 0;
        queueMax = 0;
        incoherent = 0;
        secondStart = Date.now();
      });
    }, 1000 / SAMPLES_PER_SECOND);
  }

  stop(): TimelineSecond[] {
    clearInterval(this.#timer);
    this.#gc?.disconnect();
    return this.#seconds;
  }
}

/** The audit writer's INSERT durations so far, from its own histogram (seconds). */
async function auditWrites(idp: Idp): Promise<{ sum: number; count: number }> {
  const metric = idp.metrics.registry.getSingleMetric('agent_idp_audit_write_seconds');
  const values = metric ? (await metric.get()).values : [];
  const pick = (suffix: string) =>
    (values as { metricName?: string; value: number }[]).find((v) => v.metricName === `agent_idp_audit_write_seconds_${suffix}`)?.value ?? 0;
  return { sum: pick('sum'), count: pick('count') };
}
