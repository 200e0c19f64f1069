import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OutboundError, isNonPublicAddress, outboundGet, outboundUrlProblem } from './outbound.ts';

// The outbound rules against real servers on loopback: what a registered URL may be, the
// address checked at connect time, no redirects, the size cap and the deadline.

const strict = { allowInsecure: false };
const insecure = { allowInsecure: true };
const limits = { timeoutMs: 200, maxBytes: 1024 };

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function reason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OutboundError) return err.reason;
    throw err;
  }
  return 'answered';
}

describe('outboundUrlProblem', () => {
  it('takes https, and http only on a loopback host with the insecure setting', () => {
    expect(outboundUrlProblem('https://issuer.example.com/', strict)).toBeUndefined();
    expect(outboundUrlProblem('http://issuer.example.com/', strict)).toMatch(/https/);
    expect(outboundUrlProblem('http://127.0.0.1:8080/', strict)).toMatch(/https/);
    expect(outboundUrlProblem('http://127.0.0.1:8080/', insecure)).toBeUndefined();
    expect(outboundUrlProblem('http://localhost:8080/', insecure)).toBeUndefined();
    expect(outboundUrlProblem('http://issuer.example.com/', insecure)).toMatch(/loopback/);
    expect(outboundUrlProblem('ftp://issuer.example.com/', insecure)).toMatch(/https/);
    expect(outboundUrlProblem('https://user:pw@issuer.example.com/', strict)).toMatch(/user name/);
    expect(outboundUrlProblem('not a url', strict)).toMatch(/absolute/);
  });

  it('refuses an address that is not public, written as an IP, without the insecure setting', () => {
    for (const host of [
      '127.0.0.1',
      '[::1]',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '[fd00::1]',
      '[fe80::1]',
      '[::ffff:10.0.0.1]',
      '0.0.0.0',
    ]) {
      expect([host, outboundUrlProblem(`https://${host}/`, strict)]).toEqual([host, expect.stringMatching(/loopback, private or link-local/)]);
    }
    expect(outboundUrlProblem('https://8.8.8.8/', strict)).toBeUndefined();
    expect(outboundUrlProblem('https://[2606:4700::1111]/', strict)).toBeUndefined();
  });

  it('classifies addresses', () => {
    expect(isNonPublicAddress('100.64.0.1')).toBe(true);
    expect(isNonPublicAddress('fc00::1')).toBe(true);
    expect(isNonPublicAddress('93.184.216.34')).toBe(false);
  });
});

describe('outboundGet', () => {
  it('answers the body of a 2xx', async () => {
    const server = await serve((_req, res) => res.end('{"ok":true}'));
    try {
      const answer = await outboundGet(`${server.url}/x`, insecure, limits);
      expect([answer.status, answer.body.toString()]).toEqual([200, '{"ok":true}']);
    } finally {
      await server.close();
    }
  });

  it('refuses http without the insecure setting, before any connection', async () => {
    let hits = 0;
    const server = await serve((_req, res) => {
      hits++;
      res.end('{}');
    });
    try {
      expect(await reason(outboundGet(`${server.url}/x`, strict, limits))).toBe('refused_url');
      expect(hits).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('checks the address a name resolves to when it connects (so DNS rebinding cannot pass)', async () => {
    // localhost passes the URL check (a name, https) and resolves to loopback: refused at connect.
    expect(await reason(outboundGet('https://localhost:1/x', strict, limits))).toBe('private_address');
  });

  it('does not follow a redirect', async () => {
    let followed = 0;
    const target = await serve((_req, res) => {
      followed++;
      res.end('{}');
    });
    const server = await serve((_req, res) => {
      res.statusCode = 302;
      res.setHeader('location', `${target.url}/`);
      res.end();
    });
    try {
      expect(await reason(outboundGet(`${server.url}/x`, insecure, limits))).toBe('redirect');
      expect(followed).toBe(0);
    } finally {
      await server.close();
      await target.close();
    }
  });

  it('cuts off an answer past the size cap, declared or not', async () => {
    const declared = await serve((_req, res) => {
      res.setHeader('content-length', '5000');
      res.end('x'.repeat(5000));
    });
    const streamed = await serve((_req, res) => {
      res.write('x'.repeat(800));
      res.write('x'.repeat(800));
      res.end();
    });
    try {
      expect(await reason(outboundGet(`${declared.url}/x`, insecure, limits))).toBe('too_large');
      expect(await reason(outboundGet(`${streamed.url}/x`, insecure, limits))).toBe('too_large');
    } finally {
      await declared.close();
      await streamed.close();
    }
  });

  it('gives up on a server that does not answer by the deadline', async () => {
    const silent = await serve(() => {});
    const trickle = await serve((_req, res) => {
      res.write('{');
    });
    try {
      expect(await reason(outboundGet(`${silent.url}/x`, insecure, limits))).toBe('timeout');
      expect(await reason(outboundGet(`${trickle.url}/x`, insecure, limits))).toBe('timeout');
    } finally {
      await silent.close();
      await trickle.close();
    }
  });

  it('refuses an answer other than 2xx', async () => {
    const server = await serve((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    try {
      expect(await reason(outboundGet(`${server.url}/x`, insecure, limits))).toBe('status');
    } finally {
      await server.close();
    }
  });
});
