import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AUTHORIZATION_SERVER_METADATA_PATH, DISCOVERY_PATH, JWKS_PATH, TOKEN_PATH } from './paths.ts';
import type { Keyset } from '../keys/key-ring.ts';
import { JwksDocument } from './endpoints/jwks.ts';

// Holds the Provider that serves the OAuth endpoints now. oidc-provider fixes its keys when it
// is constructed, so a change of the key set builds a new Provider and swaps it in here; a
// request in flight finishes on the instance it started on. The JWKS document of the same key
// set is kept beside it, answered before any Koa middleware (endpoints/jwks.ts).

const PROVIDER_PATHS = new Set([TOKEN_PATH, DISCOVERY_PATH, JWKS_PATH]);

export class ProviderHost {
  #handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  #jwks: JwksDocument;

  constructor(provider: Provider, keyset: Pick<Keyset, 'privateJwks'>) {
    this.#handler = provider.callback() as never;
    this.#jwks = new JwksDocument(keyset);
  }

  swap(provider: Provider, keyset: Pick<Keyset, 'privateJwks'>): void {
    this.#jwks = new JwksDocument(keyset);
    this.#handler = provider.callback() as never;
  }

  /** Hands a request to the current Provider as it is (the server handler's lane for /token). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    return this.#handler(req, res);
  }

  /** The published key set of the current Provider. */
  get jwks(): JwksDocument {
    return this.#jwks;
  }

  /** Koa middleware: hands the OAuth paths to the current Provider, everything else on. */
  middleware() {
    return async (ctx: Context, next: Next) => {
      let path = ctx.path;
      if (path === AUTHORIZATION_SERVER_METADATA_PATH) {
        path = DISCOVERY_PATH;
        ctx.req.url = path + (ctx.querystring ? `?${ctx.querystring}` : '');
      }
      if (!PROVIDER_PATHS.has(path)) return next();
      ctx.respond = false;
      await this.#handler(ctx.req, ctx.res);
    };
  }
}
