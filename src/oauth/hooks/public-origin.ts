import type { Context, Next } from 'koa';

/**
 * Provider middleware, first of all: the URLs oidc-provider derives from a request (urlFor: the
 * token endpoint in discovery, the audiences a client assertion may name, the `htu` a DPoP
 * proof must carry) start with PUBLIC_URL's origin, never with the request's Host or scheme.
 * A forged Host would otherwise let an assertion or a proof made for another server pass here,
 * and behind a TLS proxy the provider, seeing http, would refuse every proof for https.
 */
export function publicOrigin(publicUrl: string) {
  const origin = new URL(publicUrl).origin;
  return function usePublicOrigin(ctx: Context, next: Next) {
    // Koa's request.href (which urlFor builds on) is protocol + host + originalUrl: shadowed, for this request only.
    const request = ctx.request;
    Object.defineProperty(request, 'href', { get: () => origin + request.originalUrl, configurable: true });
    return next();
  };
}
