import type { components } from '../../openapi/openapi-types.ts';
import { CLIENT_ASSERTION_TYPE, clientAssertion, type KeyClient } from './assertion.ts';
import { Refused, Unreachable } from './errors.ts';
import type { Profile } from './profiles.ts';

// The CLI's only way to the server: HTTP to /token and the management API (design/cli-and-sdk.md).

export type TokenResponse = components['schemas']['TokenResponse'];
type Problem = components['schemas']['Problem'];
type OAuthError = components['schemas']['OAuthError'];

export type Query = Record<string, string | number | undefined>;

async function send(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    // fetch hides the system error (ECONNREFUSED, ENOTFOUND, ...) in its cause.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Unreachable(`cannot reach ${new URL(url).origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
}

async function refusal(response: Response): Promise<Refused> {
  const text = await response.text();
  let body: Partial<Problem & OAuthError> = {};
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
  }
  const code = body.code ?? body.error ?? `http_${response.status}`;
  const detail = body.detail ?? body.error_description ?? (response.statusText || 'the server refused the request');
  return new Refused(response.status, code, detail, body.requestId);
}

/** RFC 6749 §2.3.1: the client id and secret are form-urlencoded before they go into Basic. */
function basic(clientId: string, clientSecret: string): string {
  const encode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return 'Basic ' + Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64');
}

/** POST to an OAuth endpoint (/token, /token/introspect) as the client: its secret, or an assertion signed with its key. */
export async function oauthPost(client: Profile | KeyClient, path: string, form: Record<string, string | undefined>): Promise<unknown> {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) if (value !== undefined) body.set(key, value);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if ('key' in client) {
    body.set('client_id', client.clientId);
    body.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
    body.set('client_assertion', await clientAssertion(client));
  } else {
    headers.authorization = basic(client.clientId, client.clientSecret);
  }
  const response = await send(client.url + path, { method: 'POST', headers, body });
  if (!response.ok) throw await refusal(response);
  return response.json();
}

export function requestToken(profile: Profile | KeyClient, params: { scope?: string; resource?: string } = {}): Promise<TokenResponse> {
  return oauthPost(profile, '/token', { grant_type: 'client_credentials', ...params }) as Promise<TokenResponse>;
}

export class ManagementApi {
  readonly profile: Profile;
  // The management token lives in this process only: never written to disk, fetched once per run.
  private token?: Promise<string>;

  constructor(profile: Profile) {
    this.profile = profile;
  }

  get audience(): string {
    return `${this.profile.url}/api/v1`;
  }

  accessToken(): Promise<string> {
    this.token ??= requestToken(this.profile, { resource: this.audience }).then((t) => t.access_token);
    return this.token;
  }

  /** The raw response of a successful request (for streams); a refusal throws. */
  async fetch(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<Response> {
    const url = new URL(this.audience + path);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = { authorization: `Bearer ${await this.accessToken()}`, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const response = await send(url.href, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
    if (!response.ok) throw await refusal(response);
    return response;
  }

  /** The answer's JSON, or undefined for a 204. */
  async request<T = unknown>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
    const response = await this.fetch(method, path, options);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  get<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }
}
