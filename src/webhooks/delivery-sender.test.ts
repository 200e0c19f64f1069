import { createServer, type Server, type ServerResponse, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeliverySender } from './delivery-sender.ts';

// One attempt over real HTTP against servers this test runs: the bounds that keep a slow,
// huge, redirecting or private endpoint from holding or misleading a sender.

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, hits: () => hits };
}

const open = new DeliverySender({ allowInsecureUrls: true, allowPrivateTargets: true });
const body = JSON.stringify({ type: 'webhook.test', timestamp: new Date().toISOString(), data: {} });
const headers = { 'webhook-id': 'x', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x' };

describe('one delivery attempt', () => {
  it('is a success on 2xx only, with the body and headers sent as given', async () => {
    let got: { headers: IncomingMessage['headers']; body: string } | undefined;
    const ok = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got = { headers: req.headers, body: Buffer.concat(chunks).toString() };
        res.statusCode = 204;
        res.end();
      });
    });
    expect(await open.send(`http://127.0.0.1:${ok.port}/h`, headers, body)).toEqual({ ok: true, statusCode: 204, error: null });
    expect(got).toMatchObject({ body, headers: { 'webhook-id': 'x', 'content-type': 'application/json' } });
    const failing = await serve((_req, res) => {
      res.statusCode = 500;
      res.end('no');
    });
    expect(await open.send(`http://127.0.0.1:${failing.port}/h`, headers, body)).toEqual({ ok: false, statusCode: 500, error: 'the endpoint answered 500' });
  });

  it('does not follow a redirect: a 3xx is a failure, and its Location gets nothing', async () => {
    const elsewhere = await serve((_req, res) => res.end('ok'));
    const redirecting = await serve((_req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${elsewhere.port}/stolen` });
      res.end();
    });
    expect(await open.send(`http://127.0.0.1:${redirecting.port}/h`, headers, body)).toEqual({
      ok: false,
      statusCode: 307,
      error: 'the endpoint answered 307',
    });
    expect(elsewhere.hits()).toBe(0);
  });

  it('gives up on an endpoint that does not answer, at the time-out', async () => {
    const silent = await serve(() => {});
    const sender = new DeliverySender({ allowInsecureUrls: true, allowPrivateTargets: true, timeoutMs: 300 });
    expect(await sender.send(`http://127.0.0.1:${silent.port}/h`, headers, body)).toEqual({ ok: false, statusCode: null, error: 'timed out after 300 ms' });
  });

  it('gives up on an endpoint that sends its status and then trickles, at the time-out', async () => {
    const trickling = await serve((_req, res) => {
      res.writeHead(200);
      res.write('.');
    });
    const sender = new DeliverySender({ allowInsecureUrls: true, allowPrivateTargets: true, timeoutMs: 300 });
    expect(await sender.send(`http://127.0.0.1:${trickling.port}/h`, headers, body)).toEqual({ ok: false, statusCode: null, error: 'timed out after 300 ms' });
  });

  it('reads at most maxResponseBytes of an endless answer, and is done then', async () => {
    let written = 0;
    const endless = await serve((_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(16 * 1024, 'x');
      const more = () => {
        while (!res.destroyed && res.write(chunk)) written += chunk.length;
        if (!res.destroyed) res.once('drain', more);
      };
      more();
    });
    // A time-out far above what reading 64 KiB takes: the cap ends the attempt, not the clock.
    const sender = new DeliverySender({ allowInsecureUrls: true, allowPrivateTargets: true, timeoutMs: 120_000, maxResponseBytes: 64 * 1024 });
    expect(await sender.send(`http://127.0.0.1:${endless.port}/h`, headers, body)).toEqual({ ok: true, statusCode: 200, error: null });
    expect(written).toBeGreaterThan(0);
  });

  it('refuses http unless insecure URLs are allowed, without connecting', async () => {
    const target = await serve((_req, res) => res.end());
    const strict = new DeliverySender({ allowInsecureUrls: false, allowPrivateTargets: true });
    expect((await strict.send(`http://127.0.0.1:${target.port}/h`, headers, body)).error).toBe('the URL is not one this service may call');
    expect(target.hits()).toBe(0);
  });

  it('refuses a non-public address: an IP literal before connecting, a name by the address it resolves to at connect time', async () => {
    const target = await serve((_req, res) => res.end());
    const guarded = new DeliverySender({ allowInsecureUrls: true, allowPrivateTargets: false });
    expect(await guarded.send(`http://127.0.0.1:${target.port}/h`, headers, body)).toEqual({
      ok: false,
      statusCode: null,
      error: 'refused: 127.0.0.1 is a non-public address',
    });
    // A name that passed registration (it is no IP address) and resolves to loopback now: the
    // socket's own lookup refuses it, so a rebinding DNS answer cannot get through.
    const byName = await guarded.send(`http://localhost:${target.port}/h`, headers, body);
    expect(byName).toMatchObject({ ok: false, statusCode: null });
    expect(byName.error).toMatch(/^refused: localhost resolves to (127\.0\.0\.1|::1), a non-public address$/);
    expect(target.hits()).toBe(0);
    // Allowed, the same name connects.
    expect((await open.send(`http://localhost:${target.port}/h`, headers, body)).ok).toBe(true);
  });
});
