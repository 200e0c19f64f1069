import { createHash } from 'node:crypto';
import Provider, { type ClientAuthMethod, type KoaContextWithOIDC } from 'oidc-provider';
import { SIGNING_ALGS, type Config } from '../../config/index.ts';
import type { Keyset } from '../keys/key-ring.ts';
import type { AuditWriter } from '../audit/audit.writer.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import type { Logger } from '../lib/logger.ts';
import type { AuthThrottle } from '../throttling/auth-throttle.ts';
import type { TokenQuotas } from '../throttling/token-quota.ts';
import type { TokenCounter } from '../usage/token-counter.ts';
import { adapterFactory } from './adapter.ts';
import { EXTERNAL_SIGNING_ACK, NodeSigningKey } from './signing-key.ts';
import { AGENT_GRANT_TYPES, AGENT_METADATA, CLIENT_AUTH_METHODS } from './clients.ts';
import { assertClaims, CLOCK_TOLERANCE_SECONDS } from './client-auth/private-key-jwt.ts';
import type { ReplaysRepository } from './replays.repository.ts';
import { publicOrigin } from './hooks/public-origin.ts';
import type { ClientStore } from './client-store.ts';
import { noteClientAuth } from './client-auth/note.ts';
import { useAgentSecrets } from './client-auth/secret.ts';
import { clientCredentialsGrant } from './grants/client-credentials.ts';
import { delegationClaims, registerTokenExchange } from './grants/token-exchange.ts';
import type { AccessTokenVerifier } from './verifier.ts';
import { registerJwtBearerGrant } from './grants/jwt-bearer.ts';
import type { AssertionVerifier } from './federation/assertion.ts';
import { federatedClient } from './hooks/federated-client.ts';
import { throttleTokenAuth } from './hooks/auth-throttle.ts';
import { pruneDiscovery } from './hooks/discovery.ts';
import { jwksCaching } from './hooks/jwks-cache.ts';
import { logServerErrors } from './hooks/server-errors.ts';
import { tokenAudit } from './hooks/token-audit.ts';
import { answerOutage } from './hooks/unavailable.ts';
import { forwardedClientIp } from '../http/client-ip.ts';
import { INTROSPECTION_PATH, JWKS_PATH, REVOCATION_PATH, TOKEN_PATH } from './paths.ts';

// oidc-provider configured for one job: the client_credentials grant issuing RFC 9068 JWT
// access tokens to agents (and the token exchange of RFC 8693, for an agent acting for another:
// grants/token-exchange.ts), who authenticate with a secret or a key (private_key_jwt, RFC 7523)
// and may bind their tokens to a key of theirs (DPoP, RFC 9449); or, with no secret, the same
// tokens for a JWT of a trusted external issuer (jwt-bearer, RFC 7523 §2.1). Introspection and revocation
// are our own routes (endpoints/: the provider refuses structured tokens there); no interactive
// flow, no refresh tokens, no ID tokens. What each piece does is in the file it comes from.

export interface ProviderDeps {
  config: Config;
  keyset: Keyset;
  clients: ClientStore;
  credentials: Pick<CredentialsService, 'verifySecret'>;
  logger: Logger;
  auditWriter: Pick<AuditWriter, 'write'>;
  throttle: AuthThrottle;
  quotas: TokenQuotas;
  counter: Pick<TokenCounter, 'issued'>;
  replays: Pick<ReplaysRepository, 'claim'>;
  /** Checks the subject and actor tokens of a token exchange. */
  verifier: Pick<AccessTokenVerifier, 'decode' | 'verify'>;
  /** Verifies the external JWTs of the jwt-bearer grant (RFC 7523 §2.1). */
  federation: AssertionVerifier;
}

const AUTH_METHODS = [...CLIENT_AUTH_METHODS] as ClientAuthMethod[];
// `none` only ever for the client of a jwt-bearer request (hooks/federated-client.ts, clients.ts): no agent is loaded with it otherwise.
const TOKEN_AUTH_METHODS = [...AUTH_METHODS, 'none'] as ClientAuthMethod[];

export function buildProvider({
  config,
  keyset,
  clients,
  credentials,
  logger,
  auditWriter,
  throttle,
  quotas,
  counter,
  replays,
  verifier,
  federation,
}: ProviderDeps): Provider {
  const cookieKey = createHash('sha256').update(`agent-idp cookies ${keyset.activeKid}`).digest('base64url');
  const grant = clientCredentialsGrant(config, keyset, quotas);
  const issuerOrigin = new URL(config.publicUrl).origin;

  const provider = new Provider(config.publicUrl, {
    adapter: adapterFactory(clients, throttle, replays),
    // Signed by node:crypto with KeyObjects made once per key set (signing-key.ts).
    jwks: { keys: keyset.privateJwks.map((jwk) => new NodeSigningKey(jwk as never)) },
    // No flow here sets a cookie; the provider still wants keys to sign one with.
    cookies: { keys: [cookieKey] },
    clientAuthMethods: TOKEN_AUTH_METHODS,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    // The rules of RFC 7523 the provider leaves to us: a bounded lifetime, sub, which key signed.
    assertJwtClientAuthClaimsAndHeader: assertClaims as never,
    // A browser's POST carries an Origin header, which oidc-provider refuses for confidential
    // clients unless this allows it. Only the issuer's own origin is: that is the console at
    // /console signing in; no other site's page may call /token, /token/introspect or /token/revoke.
    clientBasedCORS: (_ctx, origin) => origin === issuerOrigin,
    clientDefaults: {
      grant_types: AGENT_GRANT_TYPES,
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: keyset.activeAlg,
    },
    // client_secret_jwt would make the provider use the secret as an HMAC key: off, with every HS*.
    // Assertions and DPoP proofs: the asymmetric algorithms of our own keys, no `none`.
    enabledJWA: {
      clientAuthSigningAlgValues: [...SIGNING_ALGS],
      idTokenSigningAlgValues: [...SIGNING_ALGS],
      dPoPSigningAlgValues: [...SIGNING_ALGS],
    },
    responseTypes: [],
    // No OpenID scopes: agents' scopes are their own (checked by the grant).
    scopes: [],
    extraClientMetadata: {
      properties: [...AGENT_METADATA],
      validator() {
        // Written by our own adapter from validated rows; nothing to check.
      },
    },
    features: {
      ...grant.features,
      devInteractions: { enabled: false },
      introspection: { enabled: false },
      revocation: { enabled: false },
      userinfo: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      // RFC 9449 at /token; no server nonces (a proof's iat must be within five minutes of now,
      // and its jti is accepted once across instances: the adapter's ReplayDetection).
      dPoP: { enabled: true },
      rpInitiatedLogout: { enabled: false },
      externalSigningSupport: { enabled: true, ack: EXTERNAL_SIGNING_ACK },
    },
    formats: {
      customizers: {
        // An exchanged token is the actor's client_credentials token plus the delegation claims.
        jwt(ctx, token, jwt) {
          // Synchronous, as the client_credentials customizer is: no extra await on the /token path.
          const base = grant.formats.customizers.jwt(ctx, token, jwt);
          const delegated = delegationClaims(token);
          if (delegated) Object.assign(jwt.payload, delegated);
          return base;
        },
      },
    },
    ttl: grant.ttl,
    routes: { token: TOKEN_PATH, jwks: JWKS_PATH },
    discovery: {
      introspection_endpoint: config.publicUrl + INTROSPECTION_PATH,
      introspection_endpoint_auth_methods_supported: AUTH_METHODS,
      introspection_endpoint_auth_signing_alg_values_supported: [...SIGNING_ALGS],
      revocation_endpoint: config.publicUrl + REVOCATION_PATH,
      revocation_endpoint_auth_methods_supported: AUTH_METHODS,
      revocation_endpoint_auth_signing_alg_values_supported: [...SIGNING_ALGS],
    },
    async findAccount() {
      return undefined;
    },
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  // RFC 8693, registered before any client loads: a client's grant_types must be known to the provider.
  registerTokenExchange(provider, { config, keyset, verifier, quotas });
  registerJwtBearerGrant(provider, federation);

  provider.use(publicOrigin(config.publicUrl));
  // First, so that the audit events of /token name the client behind the proxies (ctx.ip).
  if (config.trustProxy > 0) provider.use(forwardedClientIp(config.trustProxy));
  useAgentSecrets(provider, credentials);
  logServerErrors(provider, logger);
  // The hooks that only rewrite an answer run in one middleware, outermost (JWKS requests are
  // so cheap that each extra async layer shows); the token audit must be inside the client-auth note.
  const cacheJwks = jwksCaching();
  provider.use(async function afterAnswer(ctx, next) {
    await next();
    const route = (ctx as unknown as KoaContextWithOIDC).oidc?.route;
    // Only a good answer: the ETag is hashed once, from the first JWKS this Provider serves.
    if (ctx.status === 200 && route === 'jwks') cacheJwks(ctx);
    else if (ctx.status === 200 && route === 'discovery') pruneDiscovery(ctx, config.publicUrl);
    // Last: also after the token audit, which may have failed the request.
    answerOutage(ctx);
  });
  provider.use(noteClientAuth());
  // Outside the token audit: a failure is counted once its event is recorded.
  provider.use(throttleTokenAuth(throttle, logger));
  provider.use(tokenAudit({ writer: auditWriter, clients, logger, activeKid: keyset.activeKid, counter }));
  // Inside the token audit, which records what the jwt-bearer grant decides.
  provider.use(federatedClient(clients));
  return provider;
}
