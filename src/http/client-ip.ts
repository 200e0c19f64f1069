import type Koa from 'koa';
import type { Context, Next } from 'koa';

// The client address of a request (ctx.ip): what audit events record and what throttles count.
// Behind TRUST_PROXY proxies, it is the address the outermost trusted proxy saw: the n-th entry
// of X-Forwarded-For from the right, each trusted proxy having appended the address of its peer.
// Entries further left came from the client and prove nothing. With no trusted proxy the header
// is ignored and the socket's peer is the client.

/** Koa's own rule (request.ips, request.ip): `proxy` on, and at most `hops` addresses read from the right. */
export function trustProxy(app: Koa, hops: number): void {
  app.proxy = hops > 0;
  app.maxIpsCount = hops;
}

/**
 * The same rule as a middleware, for oidc-provider's Koa app: there `proxy` stays off, because
 * it would also make X-Forwarded-Host and X-Forwarded-Proto decide the endpoint URLs the
 * discovery document advertises.
 */
export function forwardedClientIp(hops: number) {
  return function clientIpFromProxy(ctx: Context, next: Next) {
    const forwarded = ctx.get('x-forwarded-for');
    if (forwarded) {
      const ips = forwarded.split(',');
      const ip = ips[Math.max(0, ips.length - hops)].trim();
      if (ip) ctx.request.ip = ip;
    }
    return next();
  };
}
