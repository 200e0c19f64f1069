import { TokenError } from './errors.ts';
import { requireScopes, type AccessTokenClaims, type Verifier } from './verifier.ts';

// Koa and Express guards: the claims on the request, or the RFC 6750 §3 challenge. Typed by the
// few members they use, so the SDK depends on neither framework.

export interface AuthOptions {
  /** Scopes this route needs, on top of the verifier's requiredScopes. */
  scopes?: string[];
  /** The URL of this server's RFC 9728 metadata, sent as `resource_metadata` (what MCP clients look for). */
  resourceMetadataUrl?: string;
}

interface Challenge {
  status: 401 | 403;
  wwwAuthenticate: string;
  body: { error: string; error_description: string };
}

// RFC 6750 §3: a quoted value may not hold `"` or `\`; error_description is printable ASCII.
const quoted = (value: string) => `"${value.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?')}"`;

function challenge(err: TokenError | undefined, options: AuthOptions): Challenge {
  const params: string[] = [];
  if (err) {
    params.push(`error=${quoted(err.code)}`, `error_description=${quoted(err.message)}`);
    if (err.code === 'insufficient_scope' && err.requiredScopes) params.push(`scope=${quoted(err.requiredScopes.join(' '))}`);
  }
  if (options.resourceMetadataUrl) params.push(`resource_metadata=${quoted(options.resourceMetadataUrl)}`);
  return {
    status: err?.code === 'insufficient_scope' ? 403 : 401,
    // RFC 6750 §3.1: a request without a token gets the bare challenge, no error code.
    wwwAuthenticate: params.length ? `Bearer ${params.join(', ')}` : 'Bearer',
    body: { error: err?.code ?? 'invalid_request', error_description: err?.message ?? 'no bearer token' },
  };
}

function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization ?? '');
  return match?.[1];
}

/** The claims, or the challenge to answer with; errors other than TokenError are thrown. */
async function authorize(verifier: Verifier, authorization: string | undefined, options: AuthOptions): Promise<AccessTokenClaims | Challenge> {
  const token = bearerToken(authorization);
  if (!token) {
    return authorization
      ? challenge(new TokenError('invalid_token', 'the Authorization header is not a bearer token'), options)
      : challenge(undefined, options);
  }
  try {
    const claims = await verifier.verify(token);
    requireScopes(claims, options.scopes);
    return claims;
  } catch (err) {
    if (err instanceof TokenError) return challenge(err, options);
    throw err;
  }
}

const isChallenge = (value: AccessTokenClaims | Challenge): value is Challenge => 'wwwAuthenticate' in value;

export interface KoaContextLike {
  get(field: string): string;
  set(field: string, value: string): void;
  status: number;
  body: unknown;
  state: Record<string, any>;
}

/** Koa middleware: `ctx.state.auth` holds the claims. */
export function koaAuth(verifier: Verifier, options: AuthOptions = {}) {
  return async (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<void> => {
    const result = await authorize(verifier, ctx.get('authorization') || undefined, options);
    if (isChallenge(result)) {
      ctx.status = result.status;
      ctx.set('WWW-Authenticate', result.wwwAuthenticate);
      ctx.body = result.body;
      return;
    }
    ctx.state.auth = result;
    await next();
  };
}

export interface ExpressRequestLike {
  headers: { authorization?: string };
  auth?: AccessTokenClaims;
}

export interface ExpressResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

/** Express (or plain node:http) middleware: `req.auth` holds the claims. */
export function expressAuth(verifier: Verifier, options: AuthOptions = {}) {
  return (req: ExpressRequestLike, res: ExpressResponseLike, next: (err?: unknown) => void): void => {
    authorize(verifier, req.headers.authorization, options).then((result) => {
      if (!isChallenge(result)) {
        req.auth = result;
        return next();
      }
      res.statusCode = result.status;
      res.setHeader('WWW-Authenticate', result.wwwAuthenticate);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(result.body));
    }, next);
  };
}
