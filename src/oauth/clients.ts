import type { ClientAgent, TokenQuota } from '../agents/agent.entity.ts';

// How an agent appears to oidc-provider: a confidential client that may only use the
// client_credentials grant. Its secret is checked by our compareClientSecret (provider.ts)
// against the bcrypt hashes of its credentials, so the metadata carries no secret: the
// client_secret below is a fixed placeholder the provider requires for secret-based auth
// methods and never compares (symmetric algorithms, which would use it as a key, are off).

export const CLIENT_SECRET_PLACEHOLDER = 'verified-by-agent-idp-against-bcrypt-hashes';

/** Our metadata beside the standard fields (see extraClientMetadata in provider.ts). */
export const AGENT_METADATA = ['org_id', 'agent_scopes', 'agent_audiences', 'access_token_ttl', 'token_quota'] as const;

export interface AgentClientMetadata {
  client_id: string;
  client_secret: string;
  grant_types: string[];
  response_types: string[];
  redirect_uris: string[];
  token_endpoint_auth_method: string;
  org_id: string;
  agent_scopes: string[];
  agent_audiences: string[];
  access_token_ttl: number | null;
  token_quota: TokenQuota | null;
}

export function clientMetadataOf(agent: ClientAgent): AgentClientMetadata {
  return {
    client_id: agent.id,
    client_secret: CLIENT_SECRET_PLACEHOLDER,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    org_id: agent.orgId,
    agent_scopes: agent.scopes,
    agent_audiences: agent.audiences,
    access_token_ttl: agent.accessTokenTtlSeconds,
    token_quota: agent.tokenQuota,
  };
}

/** The agent fields a provider Client carries (extra metadata keeps its snake_case names). */
export interface AgentClient {
  clientId: string;
  org_id: string;
  agent_scopes: string[];
  agent_audiences: string[];
  access_token_ttl: number | null;
  token_quota: TokenQuota | null;
}
