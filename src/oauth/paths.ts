// Where the OAuth endpoints and the management API live (DESIGN.md, "HTTP contract").

/** The management API's prefix, and with the issuer in front, the audience of its tokens. */
export const MANAGEMENT_AUDIENCE_PATH = '/api/v1';

/** The management API's audience under this issuer (derived each start, never stored: it follows PUBLIC_URL). */
export function managementAudience(issuer: string): string {
  return issuer + MANAGEMENT_AUDIENCE_PATH;
}

export const TOKEN_PATH = '/token';
export const JWKS_PATH = '/.well-known/jwks.json';
export const DISCOVERY_PATH = '/.well-known/openid-configuration';
/** RFC 8414 metadata: the same document as OpenID discovery. */
export const AUTHORIZATION_SERVER_METADATA_PATH = '/.well-known/oauth-authorization-server';
export const INTROSPECTION_PATH = '/token/introspect';
export const REVOCATION_PATH = '/token/revoke';
