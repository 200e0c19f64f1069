import Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from '../logger.ts';
import type { AgentsRepository } from '../agents/agents.repository.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import { authenticateClient } from '../oauth/client-auth.ts';
import { OAuthError, oauthErrorHandler } from '../oauth/oauth-errors.ts';
import { readForm } from '../http/form.ts';
import type { TokensService } from './tokens.service.ts';

export const INTROSPECTION_PATH = '/token/introspect';
export const REVOCATION_PATH = '/token/revoke';

export interface TokenRoutesDeps {
  tokens: TokensService;
  agents: AgentsRepository;
  credentials: CredentialsService;
  logger: Logger;
}

/** Our RFC 7662 and RFC 7009 endpoints (oidc-provider refuses JWT access tokens there). */
export function tokensRouter({ tokens, agents, credentials, logger }: TokenRoutesDeps): Router {
  const router = new Router();
  router.use(oauthErrorHandler(logger));

  async function authenticatedForm(ctx: Context) {
    const form = await readForm(ctx);
    const caller = await authenticateClient(ctx, form, agents, credentials);
    const token = form.get('token');
    if (!token) throw new OAuthError(400, 'invalid_request', 'missing required parameter token');
    // token_type_hint is accepted and not needed: every token here is a JWT access token.
    return { caller, token };
  }

  router.post(INTROSPECTION_PATH, async (ctx) => {
    const { caller, token } = await authenticatedForm(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await tokens.introspect(caller, token);
  });

  router.post(REVOCATION_PATH, async (ctx) => {
    const { caller, token } = await authenticatedForm(ctx);
    await tokens.revoke(caller, token);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 200;
    ctx.body = '';
  });

  return router;
}
