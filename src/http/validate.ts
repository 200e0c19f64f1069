import type { Context, Next } from 'koa';
import type { ErrorObject } from 'ajv';
import { schemaValidator } from './openapi.ts';
import { ValidationFailed, type FieldError } from './errors.ts';

function fieldErrors(errors: ErrorObject[] | null | undefined, prefix: string): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const e of errors ?? []) {
    // `allOf` and `$ref` wrappers repeat their children's errors; keep the specific ones.
    if (e.keyword === 'allOf' || e.keyword === 'if') continue;
    let field = e.instancePath || '/';
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      field = `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`;
      message = 'is not a known field';
    } else if (e.keyword === 'required') {
      field = `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`;
      message = 'is required';
    } else if (e.keyword === 'pattern' && e.schemaPath.includes('SafeText')) {
      message = 'must not contain control characters';
    }
    const key = `${field} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ field: prefix + field, message });
  }
  return out;
}

const METADATA_LIMIT_BYTES = 16 * 1024;

/** Validates the JSON body against a components schema; the result is ctx.state.input. */
export function validateBody(schemaName: string, { optional = false } = {}) {
  const validator = schemaValidator(schemaName);
  return async function validateRequestBody(ctx: Context, next: Next) {
    let body = ctx.state.body;
    if (body === undefined) {
      if (!optional) throw new ValidationFailed('a JSON request body is required');
      body = {};
    }
    if (!validator(body)) {
      const errors = fieldErrors(validator.errors, '');
      throw new ValidationFailed(`the request body is invalid: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`, errors);
    }
    const metadata = (body as { metadata?: unknown }).metadata;
    if (metadata !== undefined && Buffer.byteLength(JSON.stringify(metadata)) > METADATA_LIMIT_BYTES) {
      throw new ValidationFailed('metadata is larger than 16 KiB', [{ field: '/metadata', message: 'must be at most 16 KiB of JSON' }]);
    }
    ctx.state.input = body;
    return next();
  };
}

/** Validates the query string against a components schema; the result is ctx.state.query. */
export function validateQuery(schemaName: string) {
  const validator = schemaValidator(schemaName, { coerce: true });
  return async function validateRequestQuery(ctx: Context, next: Next) {
    const query: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(ctx.query)) {
      if (Array.isArray(value)) {
        throw new ValidationFailed(`query parameter ${key} is given more than once`, [{ field: `query/${key}`, message: 'must be given once' }]);
      }
      query[key] = value;
    }
    if (!validator(query)) {
      const errors = fieldErrors(validator.errors, 'query');
      throw new ValidationFailed(`the query is invalid: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`, errors);
    }
    ctx.state.query = query;
    return next();
  };
}
