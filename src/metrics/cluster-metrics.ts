import type { Worker } from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';

// The metrics of a cluster (WORKERS > 1). Each worker keeps its own registry (metrics.ts) and
// binds no metrics port; the primary serves GET /metrics on METRICS_PORT by asking every worker
// that is serving for its registry as JSON over the cluster's IPC channel and merging the answers
// with prom-client's AggregatorRegistry.aggregate: counters and histograms are summed, gauges
// by the aggregator each declares. The primary's own process metrics are summed in, so that
// process_cpu_seconds_total and the memory gauges are those of the whole cluster.
//
// prom-client's own clusterMetrics() is not used: it asks every connected worker, a starting one
// too (which has no registry yet), and a worker that exits during a scrape fails the scrape
// after 5 s. Here a worker that goes away is left out, and one that does not answer fails it.

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

const REQUEST = 'agent-idp:metrics-request';
const REPLY = 'agent-idp:metrics-reply';
const ANSWER_WITHIN_MS = 5_000;

interface MetricsRequest {
  type: typeof REQUEST;
  id: number;
}
interface MetricsReply {
  type: typeof REPLY;
  id: number;
  metrics?: MetricsJson;
  error?: string;
}

const isMessage = <T extends { type: string }>(message: unknown, type: T['type']): message is T =>
  typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;

/** In a worker: answers the primary's metrics requests with this instance's registry. */
export function answerMetricsRequests(registry: Registry): void {
  process.on('message', (message) => {
    if (!isMessage<MetricsRequest>(message, REQUEST)) return;
    registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ type: REPLY, id: message.id, metrics } satisfies MetricsReply),
      (err: Error) => process.send?.({ type: REPLY, id: message.id, error: err.message } satisfies MetricsReply),
    );
  });
}

export class ClusterMetrics {
  readonly #own = new Registry();
  readonly #restarts: Counter;
  readonly #serving: () => Worker[];
  #nextId = 0;

  /** `serving`: the workers that listen now (a starting worker has no registry to give). */
  constructor(serving: () => Worker[]) {
    this.#serving = serving;
    collectDefaultMetrics({ register: this.#own });
    const registers = [this.#own];
    new Gauge({
      name: 'agent_idp_cluster_workers',
      help: 'Workers of the cluster serving requests now (WORKERS > 1 only)',
      registers,
      collect() {
        this.set(serving().length);
      },
    });
    this.#restarts = new Counter({
      name: 'agent_idp_cluster_worker_restarts_total',
      help: 'Workers started again after one exited unexpectedly (WORKERS > 1 only)',
      registers,
    });
  }

  workerRestarted(): void {
    this.#restarts.inc();
  }

  /** The text exposition format of the whole cluster, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const answers = await Promise.all([this.#own.getMetricsAsJSON(), ...this.#serving().map((worker) => this.#ask(worker))]);
    const merged = AggregatorRegistry.aggregate(answers.filter((a): a is MetricsJson => a !== undefined));
    return { contentType: merged.contentType, body: await merged.metrics() };
  }

  /** One worker's registry; undefined when the worker went away before it answered. */
  #ask(worker: Worker): Promise<MetricsJson | undefined> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onGone);
        worker.off('disconnect', onGone);
      };
      const onMessage = (message: unknown) => {
        if (!isMessage<MetricsReply>(message, REPLY) || message.id !== id) return;
        done();
        if (message.error !== undefined) reject(new Error(`worker ${worker.process.pid}: ${message.error}`));
        else resolve(message.metrics);
      };
      const onGone = () => {
        done();
        resolve(undefined);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`worker ${worker.process.pid} did not give its metrics within ${ANSWER_WITHIN_MS} ms`));
      }, ANSWER_WITHIN_MS);
      worker.on('message', onMessage);
      worker.once('exit', onGone);
      worker.once('disconnect', onGone);
      if (!worker.isConnected()) return onGone();
      worker.send({ type: REQUEST, id } satisfies MetricsRequest, (err) => err && onGone());
    });
  }
}
