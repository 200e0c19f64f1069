import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../../config/index.ts';
import type { Logger } from '../lib/logger.ts';
import { ClusterMetrics } from '../metrics/cluster-metrics.ts';
import { startMetricsServer, type MetricsServer } from '../metrics/metrics-server.ts';
import { isWorkerReport, type StopRequest } from './cluster-messages.ts';
import { listenFailure } from './listen-failure.ts';

// WORKERS > 1: the primary of a node:cluster. It forks WORKERS processes, each a whole instance
// (serve.ts: createIdp and listen on PORT, with its own database pool and coherence lease; the
// cluster shares the port, the primary handing each new connection to the next worker), and
// holds no database itself. It serves the cluster's metrics on METRICS_PORT, forwards SIGTERM
// and SIGINT to every worker, and starts again a worker that exits unexpectedly.
//
// Restarts, as pm2 and systemd do them: a worker that exits while the cluster serves is logged
// and replaced; if it had served for less than STABLE_AFTER_MS (or never listened), the next
// start waits, twice as long each time, and after MAX_QUICK_EXITS such exits in a row the primary
// gives up (exit 1): restarting will not mend a port in use or a configuration the workers refuse.
// During the first start there is no second chance: a worker that cannot start stops the
// cluster at once with its reason, as a single process would exit.

const STABLE_AFTER_MS = 10_000;
const MAX_QUICK_EXITS = 5;
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

export interface ClusterOptions {
  /** The script each worker runs (default: the one this process runs). */
  exec?: string;
}

export interface ClusterEnd {
  code: number;
  /** Why the primary gave up, in one line (exit 1). */
  reason?: string;
}

interface WorkerState {
  forkedAt: number;
  listeningSince?: number;
  failure?: string;
  stableTimer?: NodeJS.Timeout;
}

export class Cluster {
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #workers = new Map<Worker, WorkerState>();
  readonly #metrics: ClusterMetrics;
  readonly #restarts = new Set<NodeJS.Timeout>();
  #metricsServer: MetricsServer | undefined;
  #started = false;
  #stopping: { now: boolean } | undefined;
  #drainFailures = 0;
  #quickExits = 0;
  #lastQuickExitAt = -Infinity;
  #end!: (end: ClusterEnd) => void;
  #ended = false;
  #gaveUp: string | undefined;
  #whenStarted!: { resolve: () => void; reject: (err: Error) => void };
  /** Settles once the cluster has ended: every worker has exited. */
  readonly ended = new Promise<ClusterEnd>((resolve) => (this.#end = resolve));

  constructor(config: Config, logger: Logger, options: ClusterOptions = {}) {
    this.#config = config;
    this.#logger = logger;
    this.#metrics = new ClusterMetrics(() => this.serving());
    if (options.exec) cluster.setupPrimary({ exec: options.exec });
  }

  /** The workers that listen now. */
  serving(): Worker[] {
    return [...this.#workers].filter(([w, s]) => s.listeningSince !== undefined && w.isConnected()).map(([w]) => w);
  }

  get metricsUrl(): string | undefined {
    return this.#metricsServer?.url;
  }

  /** Binds METRICS_PORT and forks the workers; resolves once every one of them listens, rejects if the cluster gave up or was stopped first. */
  async start(): Promise<void> {
    const started = new Promise<void>((resolve, reject) => (this.#whenStarted = { resolve, reject }));
    const { metricsPort, metricsHost } = this.#config;
    if (metricsPort !== undefined) {
      try {
        this.#metricsServer = await startMetricsServer(this.#metrics, metricsPort, metricsHost, this.#logger);
        this.#logger.info('metrics listening', { url: this.#metricsServer.url, of: `the cluster's ${this.#config.workers} workers` });
      } catch (err) {
        this.#giveUp(listenFailure(err as NodeJS.ErrnoException, metricsPort, metricsHost, { port: 'METRICS_PORT', host: 'METRICS_HOST' }));
        return started;
      }
    }
    for (let i = 0; i < this.#config.workers; i++) this.#fork();
    return started;
  }

  /**
   * The first call tells every worker to drain (each as one instance does on SIGTERM); a second
   * one tells them to stop waiting out SHUTDOWN_DELAY_SECONDS. `ended` settles once all have exited.
   */
  stop(signal: string): void {
    if (this.#stopping?.now) return;
    const now = this.#stopping !== undefined;
    if (now) this.#logger.info('second signal: telling the workers to stop waiting out the shutdown delay', { signal });
    else this.#logger.info('shutting down: the workers drain', { signal, workers: this.#workers.size });
    this.#stopAll(signal, now);
  }

  #stopAll(signal: string, now: boolean): void {
    this.#stopping = { now };
    for (const timer of this.#restarts) clearTimeout(timer);
    this.#restarts.clear();
    if (!this.#started) this.#whenStarted?.reject(new Error(this.#gaveUp ?? 'stopped before every worker listened'));
    for (const [worker, state] of this.#workers) {
      if (state.listeningSince !== undefined && worker.isConnected()) {
        worker.send({ type: 'agent-idp:stop', signal, now } satisfies StopRequest, (err: Error | null) => err && worker.process.kill('SIGTERM'));
      } else {
        // Still starting: it has nothing to drain, and may not listen for messages yet.
        worker.process.kill('SIGTERM');
      }
    }
    this.#endIfDone();
  }

  #fork(): void {
    const worker = cluster.fork();
    const state: WorkerState = { forkedAt: performance.now() };
    this.#workers.set(worker, state);
    worker.on('message', (message: unknown) => {
      if (!isWorkerReport(message)) return;
      if (message.type === 'agent-idp:start-failed') {
        state.failure = message.message;
        return;
      }
      state.listeningSince = performance.now();
      state.stableTimer = setTimeout(() => {
        // A worker started since the last quick exit has served long enough: the streak is over.
        if (state.forkedAt > this.#lastQuickExitAt) this.#quickExits = 0;
      }, STABLE_AFTER_MS);
      if (this.#stopping) {
        // Started while the cluster was being stopped: it drains at once.
        worker.send({ type: 'agent-idp:stop', signal: 'SIGTERM', now: this.#stopping.now } satisfies StopRequest);
        return;
      }
      if (!this.#started && this.serving().length === this.#config.workers) {
        this.#started = true;
        this.#logger.info('every worker listens', { workers: this.#config.workers, url: message.url });
        this.#whenStarted.resolve();
      }
    });
    worker.once('exit', (code, signal) => this.#exited(worker, state, code, signal));
  }

  #exited(worker: Worker, state: WorkerState, code: number | null, signal: string | null): void {
    this.#workers.delete(worker);
    clearTimeout(state.stableTimer);
    const pid = worker.process.pid;
    const how = signal ? `killed by ${signal}` : `exit code ${code}`;
    if (this.#stopping) {
      // A worker that never listened had nothing to drain.
      if (state.listeningSince !== undefined && (code !== 0 || signal !== null)) {
        this.#drainFailures++;
        this.#logger.error('a worker did not drain cleanly', { worker: pid, code, signal, reason: state.failure });
      }
      this.#endIfDone();
      return;
    }
    if (this.#ended) return;
    if (!this.#started) {
      this.#giveUp(state.failure ?? `a worker exited before it listened (${how})`);
      return;
    }
    const quick = state.listeningSince === undefined || performance.now() - state.listeningSince < STABLE_AFTER_MS;
    this.#quickExits = quick ? this.#quickExits + 1 : 0;
    if (quick) this.#lastQuickExitAt = performance.now();
    if (this.#quickExits > MAX_QUICK_EXITS) {
      this.#giveUp(`workers keep exiting right after they start (${this.#quickExits} in a row; the last: ${state.failure ?? how})`);
      return;
    }
    const delayMs = quick ? Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (this.#quickExits - 1)) : 0;
    this.#logger.error('a worker exited unexpectedly; starting another', { worker: pid, code, signal, reason: state.failure, restartInMs: delayMs });
    const timer = setTimeout(() => {
      this.#restarts.delete(timer);
      this.#metrics.workerRestarted();
      this.#fork();
    }, delayMs);
    this.#restarts.add(timer);
  }

  /** Stops what still runs (without waiting out the shutdown delay) and ends with exit 1. */
  #giveUp(reason: string): void {
    if (this.#ended || this.#stopping) return;
    this.#logger.error('giving up', { reason });
    this.#gaveUp = reason;
    this.#stopAll('SIGTERM', true);
  }

  #endIfDone(): void {
    if (this.#ended || this.#workers.size > 0 || this.#restarts.size > 0) return;
    this.#ended = true;
    void (async () => {
      await this.#metricsServer?.close();
      if (this.#gaveUp) this.#end({ code: 1, reason: this.#gaveUp });
      else {
        this.#logger.info('every worker stopped', { drainFailures: this.#drainFailures });
        this.#end({ code: this.#drainFailures > 0 ? 1 : 0 });
      }
    })();
  }
}

/** `npm start` with WORKERS > 1: runs the cluster until it is stopped by a signal, or gives up; then exits. */
export async function runPrimary(config: Config, logger: Logger): Promise<never> {
  const primary = new Cluster(config, logger);
  process.on('SIGTERM', () => primary.stop('SIGTERM'));
  process.on('SIGINT', () => primary.stop('SIGINT'));
  primary.start().catch(() => {
    // Reported through `ended`.
  });
  const { code, reason } = await primary.ended;
  if (reason) process.stderr.write(`agent-idp: ${reason}\n`);
  process.exit(code);
}
