// Where the OAuth endpoints and the management API live (DESIGN.md, "HTTP contract").

/** The management API's prefix, and with the issuer in front, the audience of its tokens. */
export const MANAGEMENT_AUDIENCE_PATH = '/api/v1';

/** The management API's audience under this issuer (derived each start, never stored: it follows PUBLIC_URL). */
export function managementAudience(issuer: string): string {
  return issuer + MANAGEMENT_AUDIENCE_PATH;
}

/** agent-idp's own MCP server (design/mcp.md), and with the issuer in front, the audience of its tokens. */
export const MCP_PATH = '/mcp';

/** The MCP server's audience under this issuer: a resource of its own, so a token for /api/v1 does not open it, nor the reverse. */
export function mcpAudience(issuer: string): string {
  return issuer + MCP_PATH;
}

/** RFC 9728 §3.1: the protected resource metadata of /mcp, at the well-known path with the resource's path appended. */
export const MCP_RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource' + MCP_PATH;

/**
 * The audiences a management scope implies, in this order (the first is the default of a token
 * without `resource`): the management API, then the MCP server that offers the same operations.
 */
export function managementAudiences(issuer: string): string[] {
  return [managementAudience(issuer), mcpAudience(issuer)];
}

export const TOKEN_PATH = '/token';
export const JWKS_PATH = '/.well-known/jwks.json';
export const DISCOVERY_PATH = '/.well-known/openid-configuration';
/** RFC 8414 metadata: the same document as OpenID discovery. */
export const AUTHORIZATION_SERVER_METADATA_PATH = '/.well-known/oauth-authorization-server';
export const INTROSPECTION_PATH = '/token/introspect';
export const REVOCATION_PATH = '/token/revoke';
