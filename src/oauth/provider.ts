import { createHash } from 'node:crypto';
import type { AuditWriter } from '../audit/audit.writer.ts';
import type { Context } from 'koa';
import { clientEvent } from '../audit/events.ts';
import Provider, { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { SIGNING_ALGS, type Config } from '../../config/index.ts';
import type { Keyset } from '../keys/key-ring.ts';
import { JWKS_MAX_AGE_SECONDS } from '../keys/keys.service.ts';
import type { AgentsRepository } from '../agents/agents.repository.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import { adapterFactory } from './adapter.ts';
import { allowedAudiences, unregisteredScope } from '../policies/grants.ts';
import { answerUnavailable } from './errors.ts';
import { clientAuthNotes, claimedClientId, type ClientAuthNote } from './client-auth/note.ts';
import { credentialIdOf } from '../credentials/secrets.ts';
import { toHttpError } from '../http/problem.ts';
import type { Logger } from '../lib/logger.ts';
import { INTROSPECTION_PATH, REVOCATION_PATH } from './endpoints/tokens.routes.ts';
import { AGENT_METADATA, type AgentClient } from './clients.ts';
import { isUuid } from '../lib/ids.ts';

// oidc-provider configured for one job: the client_credentials grant issuing RFC 9068 JWT
// access tokens to agents. Introspection and revocation are our own routes (the provider
// refuses structured tokens there); no interactive flow, no refresh tokens, no ID tokens.

export const MANAGEMENT_AUDIENCE_PATH = '/api/v1';

const UNSERVED_METADATA = [
  'authorization_endpoint',
  'authorization_response_iss_parameter_supported',
  'claim_types_supported',
  'claims_parameter_supported',
  'claims_supported',
  'code_challenge_methods_supported',
  'id_token_signing_alg_values_supported',
  'request_object_signing_alg_values_supported',
  'request_parameter_supported',
  'request_uri_parameter_supported',
  'require_request_uri_registration',
  'response_modes_supported',
  // oidc-provider always lists "openid"; agents' scopes are per agent, not a server-wide list.
  'scopes_supported',
  'subject_types_supported',
  'token_endpoint_auth_signing_alg_values_supported',
];

export interface ProviderDeps {
  config: Config;
  keyset: Keyset;
  agents: AgentsRepository;
  credentials: CredentialsService;
  logger: Logger;
  auditWriter: AuditWriter;
}

function agentClient(ctx: KoaContextWithOIDC): AgentClient {
  return ctx.oidc.client as unknown as AgentClient;
}

export function buildProvider({ config, keyset, agents, credentials, logger, auditWriter }: ProviderDeps): Provider {
  const cookieKey = createHash('sha256').update(`agent-idp cookies ${keyset.activeKid}`).digest('base64url');

  const provider = new Provider(config.publicUrl, {
    adapter: adapterFactory(agents),
    jwks: { keys: keyset.privateJwks as never },
    // No flow here sets a cookie; the provider still wants keys to sign one with.
    cookies: { keys: [cookieKey] },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: keyset.activeAlg,
    },
    // client_secret_jwt would make the provider use the secret as an HMAC key: off, with every HS*.
    enabledJWA: {
      clientAuthSigningAlgValues: [...SIGNING_ALGS],
      idTokenSigningAlgValues: [...SIGNING_ALGS],
    },
    responseTypes: [],
    // No OpenID scopes: agents' scopes are their own (checked in getResourceServerInfo).
    scopes: [],
    extraClientMetadata: {
      properties: [...AGENT_METADATA],
      validator() {
        // Written by our own adapter from validated rows; nothing to check.
      },
    },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      introspection: { enabled: false },
      revocation: { enabled: false },
      userinfo: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      dPoP: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // RFC 8707: without `resource`, the agent's first registered audience.
        defaultResource(ctx) {
          return allowedAudiences(agentClient(ctx).agent_audiences, config.defaultAudience)[0];
        },
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resourceIndicator) {
          const client = agentClient(ctx);
          if (!allowedAudiences(client.agent_audiences, config.defaultAudience).includes(resourceIndicator)) {
            throw new errors.InvalidTarget('the resource is not one of the audiences this agent is registered for');
          }
          const registered = client.agent_scopes;
          const requested = ctx.oidc.params?.scope as string | undefined;
          if (requested) {
            const unregistered = unregisteredScope(requested, registered);
            if (unregistered !== undefined) throw new errors.InvalidScope('the requested scope is not registered for this agent', unregistered);
          } else if (registered.length > 0) {
            // No scope asked for: the token carries every scope the agent holds.
            ctx.oidc.params!.scope = registered.join(' ');
          }
          return {
            scope: registered.join(' '),
            audience: resourceIndicator,
            accessTokenTTL: client.access_token_ttl ?? config.accessTokenTtlSeconds,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: keyset.activeAlg, kid: keyset.activeKid } },
          };
        },
      },
    },
    formats: {
      customizers: {
        // RFC 9068 claims come from the provider; org_id is ours.
        jwt(_ctx, token, jwt) {
          jwt.payload.org_id = (token.client as unknown as AgentClient | undefined)?.org_id;
        },
      },
    },
    ttl: {
      ClientCredentials(_ctx, token, client) {
        return token.resourceServer?.accessTokenTTL ?? (client as unknown as AgentClient).access_token_ttl ?? config.accessTokenTtlSeconds;
      },
    },
    routes: {
      token: '/token',
      jwks: '/.well-known/jwks.json',
    },
    // Our own RFC 7662 / RFC 7009 routes (src/tokens), advertised beside the provider's.
    discovery: {
      introspection_endpoint: config.publicUrl + INTROSPECTION_PATH,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint: config.publicUrl + REVOCATION_PATH,
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    },
    async findAccount() {
      return undefined;
    },
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  // The agent's credentials are the source of truth for its secret (see CredentialsService).
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(this: { clientId: string }, actual: string) {
    const note = clientAuthNotes.getStore();
    const pre = note?.prefetched;
    const prefetched = pre && pre.agentId === this.clientId && pre.credentialId === credentialIdOf(actual) ? pre.credential : undefined;
    const check = await credentials.verifySecret(this.clientId, actual, prefetched);
    if (note) {
      if (check.ok) note.credentialId = check.credentialId;
      else note.reason = check.reason;
    }
    return check.ok;
  };

  provider.on('server_error', (ctx: KoaContextWithOIDC, err: Error) => {
    ctx.state.serverError = err;
    logger.error('oauth endpoint failed', { requestId: ctx.response.get('x-request-id'), route: ctx.oidc?.route, err });
  });

  /** token.issued or token.denied, committed before the answer leaves; no token without its event. */
  async function auditToken(ctx: KoaContextWithOIDC, note: ClientAuthNote): Promise<void> {
    const client = ctx.oidc.client as unknown as AgentClient | undefined;
    const body = ctx.body as Record<string, unknown>;
    const koaCtx = ctx as unknown as Context;
    if (ctx.status === 200) {
      const token = ctx.oidc.entities.ClientCredentials as unknown as { jti: string; scope?: string; resourceServer?: { audience?: string } };
      await auditWriter.write(
        clientEvent(
          koaCtx,
          { id: client!.clientId, orgId: client!.org_id },
          'token.issued',
          { type: 'token', id: token.jti },
          {
            jti: token.jti,
            scope: token.scope ?? null,
            aud: token.resourceServer?.audience ?? null,
            kid: keyset.activeKid,
            credentialId: note.credentialId ?? null,
            expiresIn: body.expires_in,
          },
        ),
      );
      return;
    }
    const claimed = client?.clientId ?? claimedClientId(ctx);
    let orgId = client?.org_id ?? null;
    let reason = note.reason ?? String(body?.error ?? 'error');
    if (body?.error === 'invalid_client' && !client && !note.reason) {
      // The provider loads only active agents: tell an unknown client from a suspended one.
      const agent = claimed && isUuid(claimed) ? await agents.findForDenial(claimed) : null;
      orgId = agent?.orgId ?? null;
      reason = !agent ? 'unknown_client' : agent.status === 'active' ? 'invalid_client' : `agent_${agent.status}`;
    }
    await auditWriter.write(
      clientEvent(
        koaCtx,
        { id: claimed, orgId },
        'token.denied',
        { type: 'token', id: null },
        { error: body?.error ?? null, reason, scope: ctx.oidc.params?.scope ?? null, resource: ctx.oidc.params?.resource ?? null },
        { outcome: 'failure', agentId: orgId ? claimed : null },
      ),
    );
  }

  let jwksEtag: string | undefined;
  provider.use(async (ctx, next) => {
    const note: ClientAuthNote = {};
    await clientAuthNotes.run(note, next);
    if (ctx.oidc?.route === 'token' && ctx.status < 500) {
      try {
        await auditToken(ctx as unknown as KoaContextWithOIDC, note);
      } catch (err) {
        logger.error('could not record the token event; the request fails', { requestId: ctx.response.get('x-request-id'), err });
        ctx.state.serverError = err;
        ctx.status = 500;
        ctx.body = { error: 'server_error', error_description: 'an unexpected error occurred' };
      }
    }
    if (ctx.status === 500 && toHttpError(ctx.state.serverError)?.status === 503) {
      answerUnavailable(ctx);
      return;
    }
    if (ctx.oidc?.route === 'jwks') {
      ctx.set('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
      // The key set of a Provider never changes: hash it once.
      jwksEtag ??= `"${createHash('sha256').update(JSON.stringify(ctx.body)).digest('base64url')}"`;
      const etag = jwksEtag;
      ctx.set('ETag', etag);
      // RFC 9110 §13.1.2, compared directly: Koa's ctx.fresh also refuses when the request says
      // Cache-Control: no-cache, which fetch() adds to every conditional request.
      const ifNoneMatch = ctx.get('if-none-match');
      if (ifNoneMatch && ifNoneMatch.split(',').some((tag) => [etag, `W/${etag}`, '*'].includes(tag.trim()))) {
        ctx.status = 304;
        ctx.body = null;
      }
    } else if (ctx.oidc?.route === 'discovery' && ctx.body && typeof ctx.body === 'object') {
      // Advertise only what this server does: no authorization endpoint, no ID tokens.
      const metadata = ctx.body as Record<string, unknown>;
      for (const field of UNSERVED_METADATA) delete metadata[field];
    }
  });

  return provider;
}
