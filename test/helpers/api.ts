import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { openApiDocument } from '../../src/http/openapi.ts';

// Calls the service over HTTP and checks every answer against openapi/openapi.yaml: the status
// must be documented for the operation, and the body must match its schema.

type Operation = { responses: Record<string, { $ref?: string; content?: Record<string, { schema: unknown }> }> };

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const document = openApiDocument() as unknown as {
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, { content?: Record<string, { schema: unknown }> }>>;
};
ajv.addSchema({ $id: 'openapi', paths: document.paths, components: document.components });
const validators = new Map<string, ReturnType<typeof ajv.compile>>();

const escape = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

function validatorAt(pointer: string[]) {
  const ref = `openapi#/${pointer.map(escape).join('/')}`;
  let validate = validators.get(ref);
  if (!validate) {
    validate = ajv.compile({ $ref: ref });
    validators.set(ref, validate);
  }
  return validate;
}

const templates = Object.keys(document.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

export function operationFor(method: string, path: string): { template: string; operation: Operation } | undefined {
  const match = templates.find((t) => t.pattern.test(path));
  const operation = match && document.paths[match.template][method.toLowerCase()];
  return operation ? { template: match.template, operation } : undefined;
}

function resolveResponse(response: { $ref?: string; content?: Record<string, { schema: unknown }> }, at: string[]) {
  if (!response.$ref) return { resolved: response, at };
  const name = response.$ref.split('/').pop()!;
  return { resolved: document.components.responses[name], at: ['components', 'responses', name] };
}

export function checkAgainstContract(method: string, path: string, status: number, contentType: string, body: unknown): void {
  const found = operationFor(method, path);
  if (!found) throw new Error(`${method} ${path} is not in openapi/openapi.yaml`);
  const response = found.operation.responses[String(status)];
  if (!response) throw new Error(`${method} ${found.template} answered ${status}, which openapi/openapi.yaml does not document`);
  const { resolved, at } = resolveResponse(response, ['paths', found.template, method.toLowerCase(), 'responses', String(status)]);
  if (!resolved.content) {
    if (body !== undefined && body !== '') throw new Error(`${method} ${found.template} ${status} is documented without a body`);
    return;
  }
  const type = contentType.split(';')[0].trim();
  const media = resolved.content[type];
  if (!media) throw new Error(`${method} ${found.template} ${status} answered ${type}, documented: ${Object.keys(resolved.content).join(', ')}`);
  const validate = validatorAt([...at, 'content', type, 'schema']);
  if (!validate(body)) {
    throw new Error(`${method} ${found.template} ${status} does not match openapi: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`);
  }
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** Sent as is, with this content type. */
  raw?: { contentType: string; data: string | Buffer };
  headers?: Record<string, string>;
}

export async function call(baseUrl: string, method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let payload: string | Buffer | undefined;
  if (options.raw) {
    headers['content-type'] = options.raw.contentType;
    payload = options.raw.data;
  } else if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(options.body);
  }
  const res = await fetch(baseUrl + path, { method, headers, body: payload });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  const isJson = /^application\/([\w.-]+\+)?json/.test(contentType);
  const body = isJson && text ? JSON.parse(text) : text || undefined;
  if (contentType.startsWith('application/x-ndjson')) {
    // Each line is one object of the documented schema.
    for (const line of text.split('\n').filter(Boolean)) checkAgainstContract(method, path.split('?')[0], res.status, contentType, JSON.parse(line));
  } else {
    checkAgainstContract(method, path.split('?')[0], res.status, contentType, body);
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** A small client bound to one base URL and, optionally, one bearer token. */
export function api(baseUrl: string, token?: string) {
  const send =
    (method: string) =>
    (path: string, options: Omit<RequestOptions, 'token'> & { token?: string } = {}) =>
      call(baseUrl, method, path, { token, ...options });
  return { get: send('GET'), post: send('POST'), patch: send('PATCH'), delete: send('DELETE') };
}
