import { randomBytes } from 'node:crypto';
import { accessToken, agentWithSecret, createAgent, createOrg } from '../test/factories.ts';
import { BENCH_SCOPE, FORM, JWT_RESOURCE, basic } from './lib.ts';

// Set-up as an operator would do it, through the public API: agent-idp's fixtures come from
// test/factories.ts, whose calls also check every answer against openapi/openapi.yaml (set-up
// only; the measured requests go through bench/load.ts unchecked).

export interface Fixtures {
  operator: { clientId: string; clientSecret: string };
  orgId: string;
  adminToken: string;
  warm: { clientId: string; clientSecret: string };
  rs: { clientId: string; clientSecret: string };
  /** A valid access token of the warm agent, for introspection. */
  token: string;
}

export const TOKEN_BODY = new URLSearchParams({ grant_type: 'client_credentials', scope: BENCH_SCOPE }).toString();
export const AGENT_BODY = { scopes: [BENCH_SCOPE], audiences: [JWT_RESOURCE] };

export async function setUp(url: string, operator: Fixtures['operator']): Promise<Fixtures> {
  const idp = { url, operator };
  const org = await createOrg(idp, `bench-${randomBytes(4).toString('hex')}`);
  const adminToken = org.token;
  const warm = await agentWithSecret(idp, adminToken, { name: 'bench-warm', ...AGENT_BODY });
  const rs = await agentWithSecret(idp, adminToken, { name: 'bench-resource-server', scopes: ['tokens:introspect'], audiences: [JWT_RESOURCE] });
  const token = await accessToken(idp, warm.clientId, warm.clientSecret, { scope: BENCH_SCOPE });
  // A realistic page for the management listing: 40 more agents (no secrets, no bcrypt).
  await inParallel(
    Array.from({ length: 40 }, (_, i) => i),
    8,
    (i) => createAgent(idp, adminToken, { name: `bench-filler-${i}`, ...AGENT_BODY }),
  );
  return { operator, orgId: org.orgId, adminToken, warm, rs, token };
}

export async function inParallel<T, R>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i], i);
      }
    }),
  );
  return results;
}

// ---------------------------------------------------------------------------------------------
// Plain requests, not checked against openapi/openapi.yaml: to the reference, a bare
// oidc-provider which that contract does not describe, and the checks around a measurement, which
// ask both servers the same question the same way and test what the scenario relies on.

export interface HttpResult {
  status: number;
  body: any;
}

export async function http(
  base: string,
  method: string,
  path: string,
  options: { bearer?: string; basic?: [string, string]; form?: Record<string, string> } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
  if (options.basic) headers.authorization = basic(...options.basic);
  if (options.form) {
    headers['content-type'] = FORM;
    body = new URLSearchParams(options.form).toString();
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed };
}

/** An access token of the reference server. */
export async function referenceToken(base: string, clientId: string, secret: string, params: Record<string, string> = {}): Promise<string> {
  const res = await http(base, 'POST', '/token', { basic: [clientId, secret], form: { grant_type: 'client_credentials', ...params } });
  if (res.status !== 200) throw new Error(`no token for ${clientId}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.access_token;
}

export async function expect(what: string, check: () => Promise<boolean>): Promise<void> {
  if (!(await check())) throw new Error(`check failed: ${what}`);
}
