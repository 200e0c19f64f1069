import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, calculateJwkThumbprint, exportJWK } from 'jose';
import { UsageError } from './errors.ts';

// private_key_jwt for `token get --private-key FILE`: an RFC 7523 client assertion signed with a
// PKCS#8 PEM (what `credentials create --type private_key_jwt --out FILE` writes).

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface KeyClient {
  url: string;
  clientId: string;
  key: KeyObject;
  alg: string;
  kid: string;
}

// A PEM says its key type, not the algorithm; PS256 on an RSA key must be asked for with --alg.
const ALG_OF_KEY_TYPE: Record<string, string> = { ec: 'ES256', ed25519: 'EdDSA', rsa: 'RS256', 'rsa-pss': 'PS256' };

export async function keyClient(url: string, clientId: string, file: string, alg?: string): Promise<KeyClient> {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file, 'utf8'));
  } catch (err) {
    // The message names the file, never its content.
    throw new UsageError(`${file} is not a readable private key PEM: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const chosen = alg ?? ALG_OF_KEY_TYPE[key.asymmetricKeyType ?? ''];
  if (!chosen) throw new UsageError(`${file} holds a ${key.asymmetricKeyType} key; --alg says which algorithm it signs with`);
  // agent-idp names key credentials by their RFC 7638 thumbprint.
  const kid = await calculateJwkThumbprint(await exportJWK(key));
  return { url, clientId, key, alg: chosen, kid };
}

/** RFC 7523 §3: iss = sub = the client id, aud = the issuer, a fresh jti, 60 s of life. */
export function clientAssertion(client: KeyClient): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: client.alg, kid: client.kid })
    .setIssuer(client.clientId)
    .setSubject(client.clientId)
    .setAudience(client.url)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(client.key);
}
