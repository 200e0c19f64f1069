import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import { JWKS_MAX_AGE_SECONDS } from '../../keys/keys.service.ts';

/**
 * After the JWKS route: Cache-Control (a next key is published at least this long before it
 * signs) and an ETag, answering If-None-Match with 304. One per Provider.
 */
export function jwksCaching() {
  // The key set of a Provider never changes: hash it once.
  let etag: string | undefined;
  return function cacheJwks(ctx: Context): void {
    ctx.set('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    etag ??= `"${createHash('sha256').update(JSON.stringify(ctx.body)).digest('base64url')}"`;
    const tag = etag;
    ctx.set('ETag', tag);
    // RFC 9110 §13.1.2, compared directly: Koa's ctx.fresh also refuses when the request says
    // Cache-Control: no-cache, which fetch() adds to every conditional request.
    const ifNoneMatch = ctx.get('if-none-match');
    if (ifNoneMatch && ifNoneMatch.split(',').some((t) => [tag, `W/${tag}`, '*'].includes(t.trim()))) {
      ctx.status = 304;
      ctx.body = null;
    }
  };
}
