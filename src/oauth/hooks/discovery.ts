import type { Context } from 'koa';
import { JWKS_PATH, TOKEN_PATH } from '../paths.ts';

// What oidc-provider advertises by default and this server does not do: no authorization
// endpoint, no ID tokens, no request objects.
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
];

/**
 * After the discovery route: metadata that advertises only what this server does, every
 * endpoint under the issuer. oidc-provider builds token_endpoint and jwks_uri from the
 * request's Host (and, without TLS here, http): a forged Host would advertise another server's
 * token endpoint, where agents would send their secrets, and behind a TLS proxy the https
 * issuer would advertise http endpoints.
 */
export function pruneDiscovery(ctx: Context, issuer: string): void {
  if (!ctx.body || typeof ctx.body !== 'object') return;
  const metadata = ctx.body as Record<string, unknown>;
  for (const field of UNSERVED_METADATA) delete metadata[field];
  // `none` is there only for the jwt-bearer grant, which needs no client authentication (RFC 7523 §2.1): no client may use it otherwise.
  if (Array.isArray(metadata.token_endpoint_auth_methods_supported)) {
    metadata.token_endpoint_auth_methods_supported = metadata.token_endpoint_auth_methods_supported.filter((m) => m !== 'none');
  }
  metadata.token_endpoint = issuer + TOKEN_PATH;
  metadata.jwks_uri = issuer + JWKS_PATH;
}
