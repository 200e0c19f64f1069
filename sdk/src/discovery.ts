import { DiscoveryError } from './errors.ts';
import { requestJson, type FetchLike } from './http.ts';

// RFC 8414 authorization server metadata: where the token, JWKS and introspection endpoints are.

export interface ServerMetadata {
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
  introspection_endpoint?: string;
  revocation_endpoint?: string;
  [field: string]: unknown;
}

/** RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path. */
export function metadataUrl(issuer: string): string {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

export async function discover(fetchImpl: FetchLike, issuer: string): Promise<ServerMetadata> {
  const metadata = (await requestJson(fetchImpl, metadataUrl(issuer), { headers: { accept: 'application/json' } })) as Partial<ServerMetadata>;
  // RFC 8414 §3.3: metadata naming another issuer must not be used.
  if (metadata?.issuer !== issuer)
    throw new DiscoveryError(`the metadata at ${metadataUrl(issuer)} names the issuer ${String(metadata?.issuer)}, not ${issuer}`);
  for (const field of ['token_endpoint', 'jwks_uri'] as const) {
    if (typeof metadata[field] !== 'string') throw new DiscoveryError(`the metadata of ${issuer} has no ${field}`);
  }
  return metadata as ServerMetadata;
}

/** Discovers once and keeps the answer; a failure is not kept, so the next call tries again. */
export function cachedDiscovery(fetchImpl: FetchLike, issuer: string): () => Promise<ServerMetadata> {
  let pending: Promise<ServerMetadata> | undefined;
  return () => {
    pending ??= discover(fetchImpl, issuer).catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
