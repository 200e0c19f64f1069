import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, exportPKCS8, generateKeyPair, type CryptoKey, type JWK } from 'jose';

// A real external issuer on loopback for the jwt-bearer grant (RFC 7523 §2.1): its own
// discovery document and JWKS served by node:http, its keys made by jose. A CI platform or a
// Kubernetes cluster plays this part in production. Tests and the bench start one.

export interface IssuerKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  /** The same private key in PKCS #8 PEM (the bench's load generator signs with node:crypto). */
  privateKeyPem: string;
  publicJwk: JWK;
}

export interface JwtIssuer {
  url: string;
  keys: IssuerKey[];
  /** How many times its JWKS was fetched. */
  jwksFetches: number;
  /** Replaces the answer of a path (discovery, JWKS) for the tests of the fetch rules. */
  override(path: string, answer: ((req: IncomingMessage, res: ServerResponse) => void) | undefined): void;
  /** A new signing key published in place of the old ones (a rotation at the issuer). */
  rotate(): Promise<IssuerKey>;
  sign(claims: Record<string, unknown>, options?: { key?: IssuerKey; header?: Record<string, unknown>; omit?: string[] }): Promise<string>;
  close(): Promise<void>;
}

export const ISSUER_JWKS_PATH = '/keys';

async function newKey(alg = 'ES256'): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return { kid, alg, privateKey, privateKeyPem: await exportPKCS8(privateKey), publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export async function startJwtIssuer(options: { port?: number; cacheControl?: string } = {}): Promise<JwtIssuer> {
  const overrides = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const override = overrides.get(path);
    if (override) return override(req, res);
    if (path === '/.well-known/openid-configuration') {
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ issuer: issuer.url, jwks_uri: issuer.url + ISSUER_JWKS_PATH, id_token_signing_alg_values_supported: ['ES256'] }));
    }
    if (path === ISSUER_JWKS_PATH) {
      issuer.jwksFetches++;
      res.setHeader('content-type', 'application/json');
      res.setHeader('cache-control', options.cacheControl ?? 'max-age=300');
      return res.end(JSON.stringify({ keys: issuer.keys.map((k) => k.publicJwk) }));
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const issuer: JwtIssuer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    keys: [await newKey()],
    jwksFetches: 0,
    override(path, answer) {
      if (answer) overrides.set(path, answer);
      else overrides.delete(path);
    },
    async rotate() {
      const key = await newKey();
      issuer.keys = [key];
      return key;
    },
    async sign(claims, { key = issuer.keys[0], header = {}, omit = [] } = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = { iss: issuer.url, iat: now, exp: now + 300, jti: randomUUID(), ...claims };
      for (const name of omit) delete payload[name];
      return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header }).sign(key.privateKey);
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return issuer;
}
