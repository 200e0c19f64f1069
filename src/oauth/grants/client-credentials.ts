import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../../../config/index.ts';
import type { Keyset } from '../../keys/key-ring.ts';
import { allowedAudiences, unregisteredScope } from '../../policies/grants.ts';
import type { AgentClient } from '../clients.ts';
import type { TokenQuotas } from '../../throttling/token-quota.ts';
import { assertWithinQuota } from './quota.ts';
import { managementAudiences } from '../paths.ts';

// The client_credentials grant (RFC 6749 §4.4) as agents use it: RFC 9068 JWT access tokens for
// one audience (RFC 8707 `resource`), with the scopes and audiences the agent was registered
// with, and no more.

function agentClient(ctx: KoaContextWithOIDC): AgentClient {
  return ctx.oidc.client as unknown as AgentClient;
}

/** The parts of the provider's configuration that shape a client_credentials token. */
export function clientCredentialsGrant(
  config: Config,
  keyset: Keyset,
  quotas: Pick<TokenQuotas, 'refusal'>,
): Pick<Configuration, 'ttl'> & {
  features: Configuration['features'];
  formats: { customizers: { jwt: NonNullable<NonNullable<NonNullable<Configuration['formats']>['customizers']>['jwt']> } };
} {
  const management = managementAudiences(config.publicUrl);
  const audiencesOf = (client: AgentClient) =>
    allowedAudiences({ scopes: client.agent_scopes, audiences: client.agent_audiences }, management, config.defaultAudience);
  return {
    features: {
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // RFC 8707: without `resource`, the first allowed audience (policies/grants.ts).
        defaultResource(ctx) {
          return audiencesOf(agentClient(ctx))[0];
        },
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resourceIndicator) {
          const client = agentClient(ctx);
          if (!audiencesOf(client).includes(resourceIndicator)) {
            throw new errors.InvalidTarget('the resource is not one of the audiences this agent is registered for');
          }
          assertWithinQuota(ctx, client, quotas);
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
  };
}
