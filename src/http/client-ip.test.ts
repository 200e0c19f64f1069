import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { forwardedClientIp, trustProxy } from './client-ip.ts';

// oidc-provider's Koa app keeps `proxy` off and takes the client address from
// forwardedClientIp; it must be the address Koa's own rule gives our app for every header.

async function serve(app: Koa): Promise<{ url: string; close: () => Promise<void> }> {
  app.use((ctx) => {
    ctx.body = ctx.ip;
  });
  const server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('forwardedClientIp', () => {
  it.each([1, 2, 3])('gives the address Koa gives with proxy on and maxIpsCount %i', async (hops) => {
    const koaRule = new Koa();
    trustProxy(koaRule, hops);
    const providerLike = new Koa();
    providerLike.use(forwardedClientIp(hops));
    const [a, b] = await Promise.all([serve(koaRule), serve(providerLike)]);
    try {
      for (const header of [
        undefined,
        '',
        '203.0.113.9',
        '203.0.113.9, 198.51.100.7',
        ' 10.0.0.1 ,203.0.113.9,  198.51.100.7 ',
        '2001:db8::1, 198.51.100.7',
        ', 198.51.100.7',
      ]) {
        const headers: Record<string, string> = header === undefined ? {} : { 'x-forwarded-for': header };
        const [viaKoa, viaMiddleware] = await Promise.all([fetch(a.url, { headers }).then((r) => r.text()), fetch(b.url, { headers }).then((r) => r.text())]);
        expect({ header, ip: viaMiddleware }).toEqual({ header, ip: viaKoa });
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('is not used with TRUST_PROXY=0: Koa then ignores the header', async () => {
    const app = new Koa();
    trustProxy(app, 0);
    const s = await serve(app);
    try {
      expect(await (await fetch(s.url, { headers: { 'x-forwarded-for': '203.0.113.9' } })).text()).toBe('127.0.0.1');
    } finally {
      await s.close();
    }
  });
});
