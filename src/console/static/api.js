// The console's client of the public API: /token for the sign-in, /api/v1 for everything else.
// The access token lives in this module's memory only: never in storage or a cookie, so a
// reload signs out and no other page can send it (no CSRF surface). The client secret is
// used once, for /token, and not kept.

/** @type {{ token: string, scopes: Set<string>, clientId: string, expiresAt: number } | null} */
let session = null;
/** @type {(reason: string) => void} */
let onSignedOut = () => {};

/** An error answer of the API, with its problem+json (or OAuth error) body. */
export class ApiError extends Error {
  /** @param {{ title: string, status: number, detail?: string, code?: string, errors?: unknown[] }} problem */
  constructor(problem) {
    super(problem.detail ?? problem.title);
    this.problem = problem;
  }
}

/** @param {(reason: string) => void} handler */
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

export function currentSession() {
  return session;
}

/** @param {string} scope */
export function can(scope) {
  return session?.scopes.has(scope) ?? false;
}

/** Operators (agents of the root org) hold the scopes of keys and orgs; an org admin cannot. */
export function isOperator() {
  return can('keys:read') || can('orgs:read');
}

/** The issuer as the server publishes it: the management API's audience is `<issuer>/api/v1`. */
async function issuer() {
  const res = await fetch('/.well-known/oauth-authorization-server', { headers: { accept: 'application/json' } });
  if (!res.ok) throw new ApiError({ title: 'Discovery failed', status: res.status, detail: 'the server did not publish its metadata' });
  const metadata = await res.json();
  return /** @type {string} */ (metadata.issuer);
}

/**
 * client_credentials at /token (client_secret_post), for the management API's audience.
 * @param {string} clientId
 * @param {string} clientSecret
 */
export async function signIn(clientId, clientSecret) {
  const resource = `${await issuer()}/api/v1`;
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, resource });
  const res = await fetch('/token', { method: 'POST', body, headers: { accept: 'application/json' } });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) {
    // RFC 6749 §5.2 errors: invalid_client, invalid_target, ...
    throw new ApiError({ title: 'Sign-in failed', status: res.status, detail: answer.error_description ?? answer.error ?? 'the server refused' });
  }
  session = {
    token: answer.access_token,
    scopes: new Set(
      String(answer.scope ?? '')
        .split(' ')
        .filter(Boolean),
    ),
    clientId,
    expiresAt: Date.now() + Number(answer.expires_in ?? 0) * 1000,
  };
  return session;
}

/** @param {string} reason */
export function signOut(reason = '') {
  session = null;
  onSignedOut(reason);
}

/**
 * One call of /api/v1; an error answer throws ApiError with its problem. A 401 ends the session.
 * @param {string} method
 * @param {string} path under /api/v1
 * @param {unknown} [body]
 */
export async function call(method, path, body) {
  if (!session) throw new ApiError({ title: 'Signed out', status: 401, detail: 'sign in again' });
  if (Date.now() >= session.expiresAt) {
    signOut('Your session expired; sign in again.');
    throw new ApiError({ title: 'Session expired', status: 401, detail: 'sign in again' });
  }
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${session.token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return undefined;
  const answer = await res.json().catch(() => undefined);
  if (!res.ok) {
    if (res.status === 401) signOut('The server no longer accepts this session; sign in again.');
    throw new ApiError(answer && typeof answer === 'object' ? answer : { title: res.statusText || 'Error', status: res.status });
  }
  return answer;
}

/** A query string of the values that are set. @param {Record<string, string | number | undefined | null>} params */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') q.set(key, String(value));
  const s = q.toString();
  return s ? `?${s}` : '';
}
