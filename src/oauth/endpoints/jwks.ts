import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JWK } from 'jose';
import type { Keyset } from '../../keys/key-ring.ts';
import { JWKS_MAX_AGE_SECONDS } from '../../keys/keys.service.ts';

// GET /.well-known/jwks.json, answered from bytes made once per key set. The document is the one
// oidc-provider publishes for the same keys (lib/helpers/initialize_keystore.js: the public
// members in its order; test/jwks.test.ts holds the two equal), with the headers its route and
// our jwks-cache hook gave it: CORS for any origin, Cache-Control for the JWKS cache lifetime,
// an ETag answered with 304. Resource servers fetch it more than anything else, and a fixed
// document needs no Koa context, no middleware and no JSON.stringify per request.
// Any other method (OPTIONS, a POST) goes on to oidc-provider, which answers as before.

const PUBLIC_MEMBERS = ['kty', 'use', 'key_ops', 'kid', 'alg', 'crv', 'e', 'n', 'x', 'x5c', 'y', 'pub'] as const;

/** The public JWK Set of a key set, as oidc-provider renders it. */
export function publicJwkSet(keyset: Pick<Keyset, 'privateJwks'>): { keys: JWK[] } {
  return {
    keys: keyset.privateJwks.map((jwk) => {
      const key: Record<string, unknown> = {};
      for (const name of PUBLIC_MEMBERS) if ((jwk as Record<string, unknown>)[name] !== undefined) key[name] = (jwk as Record<string, unknown>)[name];
      return key as JWK;
    }),
  };
}

export class JwksDocument {
  readonly #body: Buffer;
  readonly #etag: string;
  readonly #headers: Record<string, string>;

  constructor(keyset: Pick<Keyset, 'privateJwks'>) {
    this.#body = Buffer.from(JSON.stringify(publicJwkSet(keyset)), 'utf8');
    this.#etag = `"${createHash('sha256').update(this.#body).digest('base64url')}"`;
    this.#headers = {
      Vary: 'Origin',
      'Access-Control-Allow-Origin': '*',
      'Content-Type': 'application/jwk-set+json; charset=utf-8',
      'Cache-Control': `public, max-age=${JWKS_MAX_AGE_SECONDS}`,
      ETag: this.#etag,
    };
  }

  get etag(): string {
    return this.#etag;
  }

  /** Answers a GET or HEAD (the caller checks the method). */
  answer(req: IncomingMessage, res: ServerResponse): void {
    for (const name in this.#headers) res.setHeader(name, this.#headers[name]);
    if (this.#matches(req.headers['if-none-match'])) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.statusCode = 200;
    res.setHeader('Content-Length', this.#body.length);
    if (req.method === 'HEAD') res.end();
    else res.end(this.#body);
  }

  /** RFC 9110 §13.1.2: a weak comparison, `*` matching any. */
  #matches(ifNoneMatch: string | undefined): boolean {
    if (!ifNoneMatch) return false;
    const tag = this.#etag;
    return ifNoneMatch.split(',').some((t) => {
      const candidate = t.trim();
      return candidate === tag || candidate === `W/${tag}` || candidate === '*';
    });
  }
}
