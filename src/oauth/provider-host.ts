import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AUTHORIZATION_SERVER_METADATA_PATH, DISCOVERY_PATH, JWKS_PATH, TOKEN_PATH } from './paths.ts';

// Holds the Provider that serves the OAuth endpoints now. oidc-provider fixes its keys when it
// is constructed, so a change of the key set builds a new Provider and swaps it in here; a
// request in flight finishes on the instance it started on.

const PROVIDER_PATHS = new Set([TOKEN_PATH, DISCOVERY_PATH, JWKS_PATH]);

export class ProviderHost {
  #handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;

  constructor(provider: Provider) {
    this.#handler = provider.callback() as never;
  }

  swap(provider: Provider): void {
    this.#handler = provider.callback() as never;
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
