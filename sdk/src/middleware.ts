import { TokenError } from './errors.ts';
import { requireScopes, type AccessTokenClaims, type Verifier, type VerifyRequest } from './verifier.ts';

// Koa and Express guards: the claims on the request, or the RFC 6750 §3 / RFC 9449 §7.1
// challenge. Typed by the few members they use, so the SDK depends on neither framework.

export interface AuthOptions {
  /** Scopes this route needs, on top of the verifier's requiredScopes. */
  scopes?: string[];
  /** The URL of this server's RFC 9728 metadata, sent as `resource_metadata` (what MCP clients look for). */
  resourceMetadataUrl?: string;
  /**
   * Where clients reach this server (`https://api.example.com`, or with a path prefix): the
   * request's path is appended to it to check a DPoP proof's `htu`. Without it the URL is
   * rebuilt from the request, trusting its Host header (and, in Koa with `app.proxy`, the
   * X-Forwarded-* ones): set it behind a proxy that rewrites them, or to pin the host.
   */
  baseUrl?: string;
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
  // RFC 9449 §7.1: a DPoP token (or one that had to be) is refused with a DPoP challenge.
  const scheme = err?.dpop ? 'DPoP' : 'Bearer';
  if (err) {
    params.push(`error=${quoted(err.code)}`, `error_description=${quoted(err.message)}`);
    if (err.code === 'insufficient_scope' && err.requiredScopes) params.push(`scope=${quoted(err.requiredScopes.join(' '))}`);
  }
  if (options.resourceMetadataUrl) params.push(`resource_metadata=${quoted(options.resourceMetadataUrl)}`);
  return {
    status: err?.code === 'insufficient_scope' ? 403 : 401,
    // RFC 6750 §3.1: a request without a token gets the bare challenge, no error code.
    wwwAuthenticate: params.length ? `${scheme} ${params.join(', ')}` : scheme,
    body: { error: err?.code ?? 'invalid_request', error_description: err?.message ?? 'no bearer token' },
  };
}

/** RFC 6750 §2.1 and RFC 9449 §7.1: `Bearer <token68>` or `DPoP <token68>`. */
function presentedToken(authorization: string | undefined): { scheme: string; token: string } | undefined {
  const match = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization ?? '');
  return match ? { scheme: match[1].toLowerCase(), token: match[2] } : undefined;
}

/** The claims, or the challenge to answer with; errors other than TokenError are thrown. */
async function authorize(
  verifier: Verifier,
  request: VerifyRequest & { headers: { authorization?: string } },
  options: AuthOptions,
): Promise<AccessTokenClaims | Challenge> {
  const authorization = request.headers.authorization;
  const presented = presentedToken(authorization);
  if (!presented) {
    return authorization
      ? challenge(new TokenError('invalid_token', 'the Authorization header is not a Bearer or DPoP token'), options)
      : challenge(undefined, options);
  }
  try {
    const claims = await verifier.verify(presented.token, request);
    requireScopes(claims, options.scopes);
    return claims;
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    const dpop = err.dpop || presented.scheme === 'dpop';
    return challenge(dpop === err.dpop ? err : new TokenError(err.code, err.message, { requiredScopes: err.requiredScopes, dpop, cause: err }), options);
  }
}

/** The URL the client sent the request to: `baseUrl` + the request's path, else the URL the request says. */
function requestUrl(options: AuthOptions, url: string): string {
  if (!options.baseUrl) return url;
  const { pathname, search } = new URL(url);
  return `${options.baseUrl.replace(/\/+$/, '')}${pathname}${search}`;
}

const isChallenge = (value: AccessTokenClaims | Challenge): value is Challenge => 'wwwAuthenticate' in value;

export interface KoaContextLike {
  get(field: string): string;
  method: string;
  /** The URL as the client sent it: protocol and host (X-Forwarded-* ones when `app.proxy` is set) and the original path. */
  href: string;
  set(field: string, value: string): void;
  status: number;
  body: unknown;
  state: Record<string, any>;
}

/** Koa middleware: `ctx.state.auth` holds the claims. */
export function koaAuth(verifier: Verifier, options: AuthOptions = {}) {
  return async (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<void> => {
    const result = await authorize(
      verifier,
      {
        method: ctx.method,
        url: requestUrl(options, ctx.href),
        headers: { authorization: ctx.get('authorization') || undefined, dpop: ctx.get('dpop') || undefined },
      },
      options,
    );
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
  headers: { authorization?: string; dpop?: string | string[]; host?: string };
  method?: string;
  /** node:http's path and query; Express rewrites it under a mounted router, hence originalUrl. */
  url?: string;
  originalUrl?: string;
  /** Express's (honouring `trust proxy`); without it, the socket says whether TLS is used. */
  protocol?: string;
  socket?: object & { encrypted?: boolean };
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
    const protocol = req.protocol ?? (req.socket?.encrypted ? 'https' : 'http');
    const request = {
      method: req.method,
      url: requestUrl(options, `${protocol}://${req.headers.host ?? 'localhost'}${req.originalUrl ?? req.url ?? '/'}`),
      headers: { authorization: req.headers.authorization, dpop: req.headers.dpop },
    };
    authorize(verifier, request, options).then((result) => {
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
