export { AgentTokenClient, type AgentTokenClientOptions, type AccessToken, type TokenRequest } from './client.ts';
export { createVerifier, requireScopes, type Verifier, type VerifierOptions, type AccessTokenClaims } from './verifier.ts';
export { koaAuth, expressAuth, type AuthOptions, type KoaContextLike, type ExpressRequestLike, type ExpressResponseLike } from './middleware.ts';
export { AgentIdpError, OAuthError, NetworkError, DiscoveryError, TokenError, type TokenErrorCode } from './errors.ts';
export type { FetchLike, RetryPolicy } from './http.ts';
export type { ServerMetadata } from './discovery.ts';
export { protectedResourceMetadata, protectedResourceMetadataUrl, type ProtectedResourceMetadata, type ProtectedResourceMetadataOptions } from './resource.ts';
