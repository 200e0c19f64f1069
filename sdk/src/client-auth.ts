import { SignJWT } from 'jose';
import { basicAuth } from './http.ts';
import { signingKey, type PrivateKeyInput, type SigningKey } from './keys.ts';

// How a client proves who it is at the token and introspection endpoints: a client secret
// (client_secret_basic) or a private key (private_key_jwt, RFC 7523 §2.2), one or the other.

export type ClientCredentials = { clientId: string; clientSecret: string } | { clientId: string; privateKey: PrivateKeyInput; kid?: string; alg?: string };

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// RFC 7523 §3: the assertion's life. Short, since every request signs a new one.
const ASSERTION_LIFETIME_SECONDS = 60;

/** RFC 7523 §3: iss = sub = the client id, aud = the issuer, a fresh jti. */
export function clientAssertion(key: SigningKey, clientId: string, audience: string, nowSeconds: number): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: key.alg, ...(key.kid ? { kid: key.kid } : {}) })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(audience)
    .setJti(crypto.randomUUID())
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + ASSERTION_LIFETIME_SECONDS)
    .sign(key.key);
}

export interface ClientAuthentication {
  /** Adds the authentication to a request: a header, or form parameters with a new assertion. */
  apply(headers: Record<string, string>, form: URLSearchParams): Promise<void>;
}

/** Exactly one of clientSecret and privateKey; the key is imported once, on first use. */
export function clientAuthentication(credentials: ClientCredentials, issuer: string, what = 'options'): ClientAuthentication {
  const hasSecret = 'clientSecret' in credentials && credentials.clientSecret !== undefined;
  const hasKey = 'privateKey' in credentials && credentials.privateKey !== undefined;
  if (hasSecret === hasKey) throw new TypeError(`${what}: give exactly one of clientSecret and privateKey`);
  if (hasSecret) {
    const header = basicAuth(credentials.clientId, (credentials as { clientSecret: string }).clientSecret);
    return {
      async apply(headers) {
        headers.authorization = header;
      },
    };
  }
  const { clientId, privateKey, kid, alg } = credentials as { clientId: string; privateKey: PrivateKeyInput; kid?: string; alg?: string };
  let key: Promise<SigningKey> | undefined;
  return {
    async apply(_headers, form) {
      key ??= signingKey(privateKey, { kid, alg }).catch((err: unknown) => {
        key = undefined;
        throw err;
      });
      // The assertion is signed with the wall clock, not a test's: the server checks it against its own.
      const assertion = await clientAssertion(await key, clientId, issuer, Math.floor(Date.now() / 1000));
      form.set('client_id', clientId);
      form.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      form.set('client_assertion', assertion);
    },
  };
}
