import type { ClientAgent, TokenQuota } from '../agents/agent.entity.ts';
import type { PublicJwk } from '../credentials/credential.entity.ts';
import type { FederatedNote } from './client-auth/note.ts';

// How an agent appears to oidc-provider: a confidential client that may only use the
// client_credentials grant. Its secret is checked by our compareClientSecret (provider.ts)
// against the bcrypt hashes of its credentials, so the metadata carries no secret: the
// client_secret below is a fixed placeholder the provider requires for secret-based auth
// methods and never compares (symmetric algorithms, which would use it as a key, are off).

/** The grants an agent may use: its own tokens, and tokens exchanged for another agent's (RFC 8693; grants/token-exchange.ts). */
export const AGENT_GRANT_TYPES = ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'];
/** RFC 7523 §2.1. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export const CLIENT_SECRET_PLACEHOLDER = 'verified-by-agent-idp-against-bcrypt-hashes';

/** Our metadata beside the standard fields (see extraClientMetadata in provider.ts). */
export const AGENT_METADATA = ['org_id', 'agent_scopes', 'agent_audiences', 'access_token_ttl', 'token_quota'] as const;

/** The client authentication methods an agent may use: with a secret, or with a key (private_key_jwt). */
export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;

export interface AgentClientMetadata {
  client_id: string;
  client_secret?: string;
  jwks?: { keys: PublicJwk[] };
  dpop_bound_access_tokens: boolean;
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

/**
 * The agent as a client for one request. An agent may hold secrets and keys at once; the
 * provider wants one method per client, so the metadata names the method the request uses:
 * with `keys` (the request carries a client assertion) private_key_jwt and the keys that may
 * verify it, else client_secret_basic (which also admits client_secret_post).
 */
export function clientMetadataOf(agent: ClientAgent, keys?: PublicJwk[]): AgentClientMetadata {
  return {
    client_id: agent.id,
    ...(keys ? { jwks: { keys } } : { client_secret: CLIENT_SECRET_PLACEHOLDER }),
    grant_types: AGENT_GRANT_TYPES,
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: keys ? 'private_key_jwt' : 'client_secret_basic',
    dpop_bound_access_tokens: agent.requireDpop,
    org_id: agent.orgId,
    agent_scopes: agent.scopes,
    agent_audiences: agent.audiences,
    access_token_ttl: agent.accessTokenTtlSeconds,
    token_quota: agent.tokenQuota,
  };
}

/**
 * The client of a jwt-bearer request (RFC 7523 §2.1): the agent its assertion maps to, with no
 * client authentication (`none`) and that grant only; the grant verifies the assertion before
 * anything is minted. An assertion that maps to no active agent gets an empty placeholder,
 * which the grant refuses.
 */
export function federatedClientMetadata(federation: FederatedNote): AgentClientMetadata {
  const agent: ClientAgent = federation.agent ?? {
    id: federation.clientId,
    orgId: '',
    status: 'suspended',
    scopes: [],
    audiences: [],
    accessTokenTtlSeconds: null,
    tokenQuota: null,
    requireDpop: false,
    mayAct: [],
  };
  const { client_secret: _, ...metadata } = clientMetadataOf(agent);
  return {
    ...metadata,
    client_id: federation.clientId,
    grant_types: [JWT_BEARER_GRANT],
    token_endpoint_auth_method: 'none',
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
