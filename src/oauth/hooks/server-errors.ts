import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from '../../lib/logger.ts';

/** oidc-provider answers its own 500s; the cause goes to the log, and to ctx.state for unavailable.ts. */
export function logServerErrors(provider: Provider, logger: Logger): void {
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: Error) => {
    ctx.state.serverError = err;
    logger.error('oauth endpoint failed', { requestId: ctx.response.get('x-request-id'), route: ctx.oidc?.route, err });
  });
}
