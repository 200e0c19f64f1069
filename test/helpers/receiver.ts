import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// A webhook receiver the test runs: a real HTTP server that records every request it gets, per
// path, and answers each path with the statuses it is told (then 200).

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** What the requests to `path` are answered with, in turn; once used up, 200. */
  answer(path: string, statuses: number[]): void;
  /** Every later request to `path` is answered with this. */
  always(path: string, status: number): void;
  to(path: string): Received[];
  close(): Promise<void>;
}

export async function startReceiver(port = 0): Promise<Receiver> {
  const received: Received[] = [];
  const queued = new Map<string, number[]>();
  const fixed = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = queued.get(path)?.shift() ?? fixed.get(path) ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    received,
    answer: (path, statuses) => queued.set(path, [...statuses]),
    always: (path, status) => fixed.set(path, status),
    to: (path) => received.filter((r) => r.path === path),
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}
