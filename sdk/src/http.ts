import { NetworkError, OAuthError } from './errors.ts';

// The requests to the authorization server: retried on 5xx, 429 and network errors with
// exponential backoff and full jitter, honouring Retry-After (RFC 9110 §10.2.3).

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** The first backoff (ms); each further one doubles, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetry: RetryPolicy = { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 5_000 };

// A Retry-After longer than this is not waited for: the caller gets the error at once.
const MAX_RETRY_AFTER_MS = 60_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function retryAfterMs(res: Response): number | undefined {
  const value = res.headers.get('retry-after');
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

async function oauthError(res: Response): Promise<OAuthError> {
  let body: { error?: unknown; error_description?: unknown } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
  }
  const error = typeof body?.error === 'string' ? body.error : res.status >= 500 ? 'server_error' : `http_${res.status}`;
  return new OAuthError(error, res.status, typeof body?.error_description === 'string' ? body.error_description : undefined, {
    dpopNonce: res.headers.get('dpop-nonce') ?? undefined,
  });
}

/**
 * Sends the request until it gets an answer that is not 5xx/429; returns its JSON, or throws
 * OAuthError / NetworkError. Given a function, it builds each attempt's request anew: a client
 * assertion or a DPoP proof has a jti that the server accepts once.
 */
export async function requestJson(
  fetchImpl: FetchLike,
  url: string,
  init: RequestInit | (() => Promise<RequestInit>),
  retry: RetryPolicy = defaultRetry,
): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    const backoff = Math.random() * Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
    // Outside the try: a key that cannot sign is the caller's error, not the network's.
    const request = typeof init === 'function' ? await init() : init;
    let res: Response;
    try {
      res = await fetchImpl(url, request);
    } catch (err) {
      if (attempt >= retry.maxAttempts) throw new NetworkError(url, err);
      await sleep(backoff);
      continue;
    }
    if (res.ok) return res.json();
    const retryable = res.status >= 500 || res.status === 429;
    const wait = retryAfterMs(res) ?? backoff;
    if (!retryable || attempt >= retry.maxAttempts || wait > MAX_RETRY_AFTER_MS) throw await oauthError(res);
    // The body is not read: drop it so the connection can be reused.
    await res.body?.cancel();
    await sleep(wait);
  }
}

/** HTTP Basic client authentication: RFC 6749 §2.3.1 form-encodes the id and the secret first. */
export function basicAuth(clientId: string, clientSecret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${btoa(`${encode(clientId)}:${encode(clientSecret)}`)}`;
}
