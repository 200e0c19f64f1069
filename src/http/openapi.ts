import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { ValidateFunction } from 'ajv';

// openapi/openapi.yaml is the single home of the request schemas: the same document that
// clients read is what validates requests at run time.

export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi/openapi.yaml', import.meta.url));

export type OpenApiDocument = {
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, unknown> };
};

let cached: OpenApiDocument | undefined;

export function openApiDocument(): OpenApiDocument {
  cached ??= parse(readFileSync(OPENAPI_PATH, 'utf8')) as OpenApiDocument;
  return cached;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

function makeAjv(coerceTypes: boolean): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true, useDefaults: true, coerceTypes });
  addFormats(ajv);
  ajv.addSchema({ $id: 'openapi', components: openApiDocument().components });
  return ajv;
}

let bodyAjv: Ajv2020 | undefined;
let queryAjv: Ajv2020 | undefined;

/** A validator for `#/components/schemas/<name>`; query validators coerce strings to numbers. */
export function schemaValidator(name: string, { coerce = false } = {}): ValidateFunction {
  if (!(name in openApiDocument().components.schemas)) {
    throw new Error(`openapi/openapi.yaml has no components.schemas.${name}`);
  }
  const ajv = coerce ? (queryAjv ??= makeAjv(true)) : (bodyAjv ??= makeAjv(false));
  return ajv.getSchema(`openapi#/components/schemas/${name}`) ?? ajv.compile({ $ref: `openapi#/components/schemas/${name}` });
}
