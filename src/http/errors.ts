// The management API's error hierarchy. Each maps to one RFC 9457 problem (see problem.ts);
// `code` is stable for clients to branch on.

export interface FieldError {
  /** JSON pointer into the request (`/name`, `/scopes/0`), or `query/limit` for the query. */
  field: string;
  message: string;
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly errors?: FieldError[];
  readonly headers: Record<string, string>;
  /** RFC 9457 §3.2 extension members: further facts a client may branch on (the limit reached, ...). */
  readonly extensions: Record<string, string>;

  constructor(
    status: number,
    code: string,
    title: string,
    detail: string,
    options: { errors?: FieldError[]; headers?: Record<string, string>; extensions?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.title = title;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }

  /** 4xx details are the client's to see; 5xx details stay in the server log. */
  get expose(): boolean {
    return this.status < 500;
  }
}

export class ValidationFailed extends HttpError {
  constructor(detail: string, errors?: FieldError[]) {
    super(400, 'validation_failed', 'Bad Request', detail, { errors });
  }
}

export class BadRequest extends HttpError {
  constructor(code: string, detail: string) {
    super(400, code, 'Bad Request', detail);
  }
}

/** The algorithms of DPoP proofs a DPoP challenge names (RFC 9449 §7.1): the service's signing algorithms. */
const DPOP_CHALLENGE_ALGS = 'RS256 PS256 ES256 EdDSA';

export class Unauthorized extends HttpError {
  constructor(detail = 'a valid bearer access token is required', error = 'invalid_token', scheme: 'Bearer' | 'DPoP' = 'Bearer') {
    super(401, 'unauthorized', 'Unauthorized', detail, {
      headers: { 'WWW-Authenticate': scheme === 'DPoP' ? `DPoP error="${error}", algs="${DPOP_CHALLENGE_ALGS}"` : `Bearer error="${error}"` },
    });
  }
}

export class Forbidden extends HttpError {
  constructor(detail: string, scope?: string) {
    super(403, 'forbidden', 'Forbidden', detail, {
      headers: scope ? { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${scope}"` } : {},
    });
  }
}

export class NotFound extends HttpError {
  constructor(detail = 'not found') {
    super(404, 'not_found', 'Not Found', detail);
  }
}

export class Conflict extends HttpError {
  constructor(code: string, detail: string, extensions?: Record<string, string>) {
    super(409, code, 'Conflict', detail, { extensions });
  }
}

/** A count limit of the org (OrgLimits) would be exceeded; `limit` names it for clients to branch on. */
export class LimitReached extends Conflict {
  constructor(limit: string, detail: string) {
    super('limit_reached', detail, { limit });
  }
}

export class PayloadTooLarge extends HttpError {
  constructor(limit: number) {
    super(413, 'payload_too_large', 'Payload Too Large', `the request body is larger than ${limit} bytes`);
  }
}

export class UnsupportedMediaType extends HttpError {
  constructor() {
    super(415, 'unsupported_media_type', 'Unsupported Media Type', 'the request body must be application/json');
  }
}

export class TooManyRequests extends HttpError {
  constructor(detail: string, retryAfterSeconds: number) {
    super(429, 'rate_limited', 'Too Many Requests', detail, { headers: { 'Retry-After': String(retryAfterSeconds) } });
  }
}

/** The one answer to "the database is out of reach", here and at the OAuth endpoints: try again in a second. */
export const UNAVAILABLE = { detail: 'the service is temporarily unavailable; try again shortly', retryAfterSeconds: '1' } as const;

export class ServiceUnavailable extends HttpError {
  constructor(detail: string = UNAVAILABLE.detail) {
    super(503, 'service_unavailable', 'Service Unavailable', detail, { headers: { 'Retry-After': UNAVAILABLE.retryAfterSeconds } });
  }
}
