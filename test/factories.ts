import { basicAuthHeader } from '../src/http/basic-auth.ts';
import { call, api } from './helpers/api.ts';
import type { TestIdp } from './helpers/idp.ts';

// Builders shared by the end-to-end tests and the benchmark's set-up (bench/): every
// one goes through the public HTTP API. They take only the parts of a TestIdp they use, so that a
// server started some other way (the bench's child process) can be set up with them too.

export interface TokenResult {
  status: number;
  body: any;
}

export async function requestToken(
  idp: Pick<TestIdp, 'url'>,
  clientId: string,
  clientSecret: string,
  params: Record<string, string> = {},
  method: 'basic' | 'post' = 'basic',
): Promise<TokenResult> {
  const form = new URLSearchParams({ grant_type: 'client_credentials', ...params });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (method === 'basic') {
    headers.authorization = basicAuthHeader(clientId, clientSecret);
  } else {
    form.set('client_id', clientId);
    form.set('client_secret', clientSecret);
  }
  const res = await call(idp.url, 'POST', '/token', {
    raw: { contentType: headers['content-type'], data: form.toString() },
    headers: { authorization: headers.authorization ?? '' },
  });
  return { status: res.status, body: res.body };
}

/** An access token (client_credentials), or an error when the server refuses it. */
export async function accessToken(idp: Pick<TestIdp, 'url'>, clientId: string, clientSecret: string, params: Record<string, string> = {}): Promise<string> {
  const res = await requestToken(idp, clientId, clientSecret, params);
  if (res.status !== 200) throw new Error(`no token for ${clientId}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.access_token;
}

/** An access token for the management API. */
export async function managementToken(idp: Pick<TestIdp, 'url'>, clientId: string, clientSecret: string, scope?: string): Promise<string> {
  const res = await requestToken(idp, clientId, clientSecret, { resource: `${idp.url}/api/v1`, ...(scope ? { scope } : {}) });
  if (res.status !== 200) throw new Error(`no management token: ${JSON.stringify(res.body)}`);
  return res.body.access_token;
}

export async function operatorToken(idp: Pick<TestIdp, 'url' | 'operator'>, scope?: string): Promise<string> {
  return managementToken(idp, idp.operator.clientId, idp.operator.clientSecret, scope);
}

let orgCounter = 0;

/** A new org, with a management token of its first admin. */
export async function createOrg(idp: Pick<TestIdp, 'url' | 'operator'>, name = `org-${process.pid}-${++orgCounter}`) {
  const res = await api(idp.url, await operatorToken(idp)).post('/api/v1/orgs', { body: { name } });
  if (res.status !== 201) throw new Error(`org not created: ${res.text}`);
  const { orgId, admin } = res.body;
  return { orgId, admin, token: await managementToken(idp, admin.clientId, admin.clientSecret) };
}

export async function createAgent(idp: Pick<TestIdp, 'url'>, token: string, body: Record<string, unknown> = {}) {
  const res = await api(idp.url, token).post('/api/v1/agents', { body: { name: 'agent', ...body } });
  if (res.status !== 201) throw new Error(`agent not created: ${res.text}`);
  return res.body;
}

export async function createCredential(idp: Pick<TestIdp, 'url'>, token: string, agentId: string, body?: Record<string, unknown>) {
  const res = await api(idp.url, token).post(`/api/v1/agents/${agentId}/credentials`, { body });
  if (res.status !== 201) throw new Error(`credential not created: ${res.text}`);
  return res.body as { credentialId: string; clientSecret: string; clientId: string };
}

/** An agent with one secret, ready to ask for tokens. */
export async function agentWithSecret(idp: Pick<TestIdp, 'url'>, token: string, body: Record<string, unknown> = {}) {
  const agent = await createAgent(idp, token, body);
  const credential = await createCredential(idp, token, agent.agentId);
  return { agent, credential, clientId: agent.agentId as string, clientSecret: credential.clientSecret };
}
