import Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from '../../lib/logger.ts';
import type { AgentsRepository } from '../../agents/agents.repository.ts';
import type { CredentialsService } from '../../credentials/credentials.service.ts';
import { authenticateClient } from '../client-auth/secret.ts';
import { OAuthError, oauthErrorHandler } from '../errors.ts';
import { readForm } from './form.ts';
import type { TokensService } from '../tokens.service.ts';
import type { Coherence } from '../../coherence/coherence.ts';
import type { AuditWriter } from '../../audit/audit.writer.ts';
import { clientEvent } from '../../audit/events.ts';
import type { ClientAgent } from '../../agents/agent.entity.ts';
import { decodeJwt } from 'jose';

export const INTROSPECTION_PATH = '/token/introspect';
export const REVOCATION_PATH = '/token/revoke';

export interface TokenRoutesDeps {
  tokens: TokensService;
  agents: AgentsRepository;
  credentials: CredentialsService;
  logger: Logger;
  auditWriter: AuditWriter;
  coherence: Coherence;
}

/** The jti of something that looks like a JWT, for the audit target; nothing is trusted from it. */
function jtiOf(token: string): string | null {
  try {
    const { jti } = decodeJwt(token);
    return typeof jti === 'string' ? jti.slice(0, 200) : null;
  } catch {
    return null;
  }
}

/** Our RFC 7662 and RFC 7009 endpoints (oidc-provider refuses JWT access tokens there). */
export function tokensRouter({ tokens, agents, credentials, logger, auditWriter, coherence }: TokenRoutesDeps): Router {
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

  const record = (
    ctx: Context,
    action: 'token.introspected' | 'token.revoked',
    caller: ClientAgent,
    token: string,
    details: Record<string, unknown>,
    agentId?: string,
  ) => auditWriter.write(clientEvent(ctx, { id: caller.id, orgId: caller.orgId }, action, { type: 'token', id: jtiOf(token) }, details, { agentId }));

  router.post(INTROSPECTION_PATH, async (ctx) => {
    const { caller, token } = await authenticatedForm(ctx);
    const answer = await tokens.introspect(caller, token);
    await record(ctx, 'token.introspected', caller, token, { active: answer.active }, answer.active ? answer.sub : undefined);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = answer;
  });

  router.post(REVOCATION_PATH, async (ctx) => {
    const { caller, token } = await authenticatedForm(ctx);
    const revoked = await tokens.revoke(caller, token);
    // Answered only once every instance will answer inactive for it (src/coherence).
    if (revoked) await coherence.settle();
    await record(ctx, 'token.revoked', caller, token, { revoked });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 200;
    ctx.body = '';
  });

  return router;
}
