// What the primary of a cluster (cluster.ts) and its workers (serve.ts) tell each other over
// the cluster's IPC channel. (The metrics have their own: metrics/cluster-metrics.ts.)

/** A worker to the primary: it serves, or it could not start and says why in one line. */
export type WorkerReport = { type: 'agent-idp:listening'; url: string } | { type: 'agent-idp:start-failed'; message: string };

/** The primary to a worker: drain (the first signal), or stop waiting out the shutdown delay (`now`: the second). */
export interface StopRequest {
  type: 'agent-idp:stop';
  signal: string;
  now: boolean;
}

const typed = (message: unknown): string | undefined =>
  typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' ? (message as { type: string }).type : undefined;

export function isWorkerReport(message: unknown): message is WorkerReport {
  const type = typed(message);
  return type === 'agent-idp:listening' || type === 'agent-idp:start-failed';
}

/** In a worker: resolves once the message has been handed to the channel (so that exiting right after does not lose it). */
export function tellPrimary(message: WorkerReport): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

export function onStopFromPrimary(handler: (request: StopRequest) => void): void {
  process.on('message', (message) => {
    if (typed(message) === 'agent-idp:stop') handler(message as StopRequest);
  });
}
