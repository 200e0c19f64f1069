import { SignJWT, base64url, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { publicPart, signingKey, type PrivateKeyInput, type SigningKey } from './keys.ts';

// The client's side of RFC 9449: the key a token is bound to, and the proofs it signs.

export interface CryptoKeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/** `true` (a new ES256 pair in memory), a CryptoKeyPair, or a private key with, if it cannot be derived, its public JWK. */
export type DpopOption = true | CryptoKeyPair | { privateKey: PrivateKeyInput; publicJwk?: JWK; alg?: string };

export interface DpopKey {
  signer: SigningKey;
  /** The public JWK that goes in every proof's header. */
  jwk: JWK;
  /** Its RFC 7638 thumbprint: the `cnf.jkt` of the tokens bound to it. */
  jkt: string;
}

const isKeyPair = (value: object): value is CryptoKeyPair => 'privateKey' in value && 'publicKey' in value;

export async function dpopKey(option: DpopOption): Promise<DpopKey> {
  let signer: SigningKey;
  let jwk: JWK | undefined;
  if (option === true) {
    // Not extractable: the private key never leaves WebCrypto, and lives as long as the client.
    const pair = await generateKeyPair('ES256');
    signer = await signingKey(pair.privateKey, { alg: 'ES256' });
    jwk = await exportJWK(pair.publicKey);
  } else if (isKeyPair(option)) {
    signer = await signingKey(option.privateKey);
    jwk = await exportJWK(option.publicKey);
  } else {
    signer = await signingKey(option.privateKey, { alg: option.alg });
    jwk = option.publicJwk ?? signer.publicJwk;
  }
  if (!jwk) throw new TypeError('dpop: the private key cannot be exported, so its public JWK must be given (publicJwk or a CryptoKeyPair)');
  // RFC 9449 §4.2: the header's jwk holds the public key only.
  const publicJwk = publicPart(jwk);
  delete publicJwk.kid;
  delete publicJwk.alg;
  delete publicJwk.use;
  return { signer, jwk: publicJwk, jkt: await calculateJwkThumbprint(publicJwk) };
}

/** RFC 9449 §4.2: `ath` is the base64url SHA-256 of the access token's ASCII. */
export async function accessTokenHash(accessToken: string): Promise<string> {
  return base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(accessToken))));
}

/** RFC 9449 §4.2: htu is the target URI without its query and fragment. */
export function htu(url: string | URL): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

export interface ProofOptions {
  method: string;
  url: string | URL;
  /** For a resource request: the token the proof goes with (`ath`). */
  accessToken?: string;
  /** A nonce the server asked for (`DPoP-Nonce`). */
  nonce?: string;
  /** Seconds since the epoch. */
  now: number;
}

export async function dpopProof(key: DpopKey, options: ProofOptions): Promise<string> {
  const claims: Record<string, string> = { htm: options.method.toUpperCase(), htu: htu(options.url), jti: crypto.randomUUID() };
  if (options.accessToken !== undefined) claims.ath = await accessTokenHash(options.accessToken);
  if (options.nonce !== undefined) claims.nonce = options.nonce;
  return new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: key.signer.alg, jwk: key.jwk }).setIssuedAt(options.now).sign(key.signer.key);
}
