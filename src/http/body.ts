import type { Context, Next } from 'koa';
import { BadRequest, PayloadTooLarge, UnsupportedMediaType } from './errors.ts';

export const BODY_LIMIT_BYTES = 1024 * 1024;

function isJsonType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = contentType.split(';')[0].trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** The raw request body, at most `limit` bytes; past that, `tooLarge()` is thrown. */
export async function readBody(ctx: Context, limit: number, tooLarge: () => Error = () => new PayloadTooLarge(limit)): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      // Stop reading; the connection is closed after the answer so the rest is not parsed.
      ctx.set('Connection', 'close');
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Parses a JSON request body into ctx.state.body (undefined when there is none). A body that
 * is not declared as JSON is 415; one over the limit 413; one that does not parse 400.
 */
export function jsonBody(limit = BODY_LIMIT_BYTES) {
  return async function parseJsonBody(ctx: Context, next: Next) {
    const hasBody = ctx.request.length > 0 || ctx.get('transfer-encoding') !== '';
    if (!['POST', 'PUT', 'PATCH'].includes(ctx.method) || !hasBody) {
      ctx.state.body = undefined;
      return next();
    }
    if (!isJsonType(ctx.get('content-type'))) throw new UnsupportedMediaType();
    const raw = await readBody(ctx, limit);
    if (raw.length === 0) {
      ctx.state.body = undefined;
      return next();
    }
    try {
      ctx.state.body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new BadRequest('invalid_json', 'the request body is not valid JSON');
    }
    return next();
  };
}
