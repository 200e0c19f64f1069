import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { randomBytes } from 'node:crypto';
import Provider, { errors, type ClientMetadata } from 'oidc-provider';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { BENCH_SCOPE, JWT_RESOURCE, OPAQUE_RESOURCE } from './lib.ts';

// The yardstick: a bare oidc-provider, as its documentation configures it, doing the same
// per-token work as agent-idp and nothing else. In-memory adapter (the default), static clients
// with plaintext secrets (compared in constant time, no bcrypt), no database, no audit.
//
// - POST /token (client_credentials, client_secret_basic) signs an RFC 9068 JWT access token
//   with the same algorithm, the same claims (org_id included) and the same lifetime as
//   agent-idp, for the resource https://api.bench.example (the default resource);
// - the resource https://opaque.bench.example gets opaque tokens (kept in memory), which the
//   provider's own introspection endpoint serves at the same path as agent-idp's;
// - GET /.well-known/jwks.json publishes as many keys of the algorithm as agent-idp does
//   (BENCH_KEYS, by default its active and next keys); the first one signs.
//
// Environment: BENCH_ALG (RS256), BENCH_KEYS (2), BENCH_CLIENT_SECRET, BENCH_RS_SECRET.
// Reports its URL over the IPC channel (or on stdout without one).

const alg = process.env.BENCH_ALG ?? 'RS256';
const keyCount = Number(process.env.BENCH_KEYS ?? 2);
const clientSecret = process.env.BENCH_CLIENT_SECRET ?? randomBytes(32).toString('base64url');
const rsSecret = process.env.BENCH_RS_SECRET ?? randomBytes(32).toString('base64url');

const keys: JWK[] = [];
for (let i = 0; i < keyCount; i++) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
  keys.push({ ...(await exportJWK(privateKey)), kid, alg, use: 'sig' });
}
const signingKid = keys[0].kid!;

let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = createServer((req, res) => handler(req, res));
server.keepAliveTimeout = 65_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const client: ClientMetadata = {
  client_id: 'bench-client',
  client_secret: clientSecret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  // As agent-idp's clients: the metadata must agree with the keys the provider holds.
  id_token_signed_response_alg: alg as ClientMetadata['id_token_signed_response_alg'],
  scope: BENCH_SCOPE,
};

const provider = new Provider(issuer, {
  clients: [client, { ...client, client_id: 'bench-rs', client_secret: rsSecret, scope: undefined }],
  jwks: { keys: keys as never },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: [BENCH_SCOPE],
  responseTypes: [],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // The resource server introspects the bench client's tokens, as agent-idp's resource
      // server agent (scope tokens:introspect) does.
      allowedPolicy: async () => true,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => JWT_RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo(_ctx, resource) {
        if (resource === JWT_RESOURCE) {
          return { scope: BENCH_SCOPE, audience: resource, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg, kid: signingKid } } } as never;
        }
        if (resource === OPAQUE_RESOURCE) {
          return { scope: BENCH_SCOPE, audience: resource, accessTokenTTL: 3600, accessTokenFormat: 'opaque' };
        }
        throw new errors.InvalidTarget();
      },
    },
  },
  formats: {
    customizers: {
      // agent-idp adds org_id to every token: the same claim here, so the payloads match.
      jwt(_ctx, _token, jwt) {
        jwt.payload.org_id = '00000000-0000-4000-8000-000000000000';
      },
    },
  },
  ttl: { ClientCredentials: 3600 },
  routes: { token: '/token', jwks: '/.well-known/jwks.json', introspection: '/token/introspect' },
  async findAccount() {
    return undefined;
  },
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});
handler = provider.callback();

const ready = { type: 'ready', url: issuer, cores: availableParallelism(), database: 'in-memory' };
if (process.send) process.send(ready);
else process.stdout.write(JSON.stringify(ready) + '\n');

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
