import type { Context } from 'koa';
import { OAuthError } from '../errors.ts';
import { readBody } from '../../http/body.ts';

const FORM_LIMIT_BYTES = 64 * 1024;

/** Reads an application/x-www-form-urlencoded body (OAuth endpoints), bounded in size. */
export async function readForm(ctx: Context): Promise<URLSearchParams> {
  const type = ctx.get('content-type').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError(400, 'invalid_request', 'the request body must be application/x-www-form-urlencoded');
  }
  const body = await readBody(ctx, FORM_LIMIT_BYTES, () => new OAuthError(400, 'invalid_request', 'the request body is too large'));
  const form = new URLSearchParams(body.toString('utf8'));
  for (const name of new Set(form.keys())) {
    // RFC 6749 §3.2: parameters must not be included more than once.
    if (form.getAll(name).length > 1) throw new OAuthError(400, 'invalid_request', `parameter ${name} must only be provided once`);
  }
  return form;
}
