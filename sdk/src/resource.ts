// RFC 9728 Protected Resource Metadata: the document a resource server (an MCP server above all)
// publishes so that a client that got a 401 can find which authorization server issues its tokens.

export interface ProtectedResourceMetadataOptions {
  /** This resource's identifier (RFC 9728 §2): the URL agents ask tokens for with `resource=` and the tokens' `aud`. */
  resource: string;
  /** The agent-idp issuer (PUBLIC_URL); the default of `authorizationServers`. */
  issuer?: string;
  /** The issuers whose tokens this resource accepts; `[issuer]` when left out. */
  authorizationServers?: string[];
  /** The scopes this resource understands, advertised as `scopes_supported`. */
  scopes?: string[];
  /** A human-readable name (`resource_name`). */
  resourceName?: string;
  /** Where a human reads about this resource (`resource_documentation`). */
  resourceDocumentation?: string;
}

export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  scopes_supported?: string[];
  /** Only the header: the SDK's middleware reads the token from `Authorization` alone. */
  bearer_methods_supported: ['header'];
  resource_name?: string;
  resource_documentation?: string;
}

/** The RFC 9728 §2 document to serve at `protectedResourceMetadataUrl(resource)`. */
export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): ProtectedResourceMetadata {
  const authorizationServers = options.authorizationServers ?? (options.issuer ? [options.issuer] : []);
  // A document without an authorization server tells a client nothing: fail at start-up, not at its first 401.
  if (!authorizationServers.length) throw new TypeError('protectedResourceMetadata needs issuer or authorizationServers');
  new URL(options.resource); // throws on a resource that is not a URL, which no client could match
  return {
    resource: options.resource,
    authorization_servers: authorizationServers,
    ...(options.scopes?.length ? { scopes_supported: options.scopes } : {}),
    bearer_methods_supported: ['header'],
    ...(options.resourceName ? { resource_name: options.resourceName } : {}),
    ...(options.resourceDocumentation ? { resource_documentation: options.resourceDocumentation } : {}),
  };
}

/**
 * RFC 9728 §3.1: the well-known segment goes between the host and the resource's path, so
 * `https://api.example/mcp` has its metadata at `https://api.example/.well-known/oauth-protected-resource/mcp`
 * (a query string is kept, a fragment is not allowed in a resource identifier).
 */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  // Only the slash right after the host goes; a path's own trailing slash is part of the identifier.
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.origin}/.well-known/oauth-protected-resource${path}${url.search}`;
}
