import { calculateJwkThumbprint, exportJWK, importJWK, importPKCS8, type CryptoKey, type JWK, type KeyObject } from 'jose';

// An agent's private key as the caller has it (a PKCS#8 PEM, a private JWK, a CryptoKey), turned
// into what signing needs: the key, its algorithm, its kid and its public half.

/** A PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), a private JWK, or a key (a CryptoKey; on Node also a KeyObject). */
export type PrivateKeyInput = string | JWK | CryptoKey | KeyObject;

export interface SigningKey {
  key: CryptoKey;
  alg: string;
  /** RFC 7638 thumbprint unless the caller named another; undefined for a key that cannot be exported. */
  kid: string | undefined;
  /** The public JWK (no private member), when it can be had. */
  publicJwk: JWK | undefined;
}

// RFC 7517 §9.3 / RFC 7518 §6: the members that make a JWK private (or symmetric).
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

export function publicPart(jwk: JWK): JWK {
  const copy: Record<string, unknown> = { ...jwk };
  for (const member of PRIVATE_MEMBERS) delete copy[member];
  delete copy.key_ops;
  delete copy.ext;
  return copy as JWK;
}

function algOfJwk(jwk: JWK): string {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'RSA') return 'RS256';
  throw new TypeError(`cannot tell the algorithm of a ${jwk.kty}${jwk.crv ? ` ${jwk.crv}` : ''} key: pass alg`);
}

/** A CryptoKey's algorithm; a Node KeyObject says its key type instead. */
function algOfKey(key: CryptoKey | KeyObject): string {
  const name = (key as CryptoKey).algorithm?.name ?? (key as { asymmetricKeyType?: string }).asymmetricKeyType;
  switch (name?.toLowerCase()) {
    case 'ecdsa':
    case 'ec':
      return 'ES256';
    case 'ed25519':
      return 'EdDSA';
    case 'rsassa-pkcs1-v1_5':
    case 'rsa':
      return 'RS256';
    case 'rsa-pss':
      return 'PS256';
    default:
      throw new TypeError(`cannot tell the algorithm of a ${name ?? 'non-asymmetric'} key: pass alg`);
  }
}

const isJwk = (value: object): value is JWK => typeof (value as JWK).kty === 'string';

async function exportable(key: CryptoKey): Promise<JWK | undefined> {
  try {
    return await exportJWK(key);
  } catch {
    // A non-extractable CryptoKey: it signs, but its kid and public half cannot be derived.
    return undefined;
  }
}

/**
 * The key ready to sign with. A PEM does not say which algorithm its key is for, so without
 * `alg` ES256, EdDSA and RS256 are tried in turn (PS256 must be named).
 */
export async function signingKey(input: PrivateKeyInput, options: { alg?: string; kid?: string } = {}): Promise<SigningKey> {
  let key: CryptoKey;
  let alg = options.alg;
  let jwk: JWK | undefined;
  if (typeof input === 'string') {
    let lastError: unknown;
    for (const candidate of alg ? [alg] : ['ES256', 'EdDSA', 'RS256']) {
      try {
        // Extractable, so that its public half and kid can be derived; it stays in this process.
        key = await importPKCS8(input, candidate, { extractable: true });
        alg = candidate;
        break;
      } catch (err) {
        lastError = err;
      }
    }
    if (!alg || !key!) throw new TypeError(`privateKey is not a PKCS#8 PEM of an ES256, EdDSA or RS256 key: ${(lastError as Error)?.message}`);
    jwk = await exportJWK(key);
  } else if (isJwk(input)) {
    if (input.d === undefined) throw new TypeError('privateKey is a public JWK: the private one (with "d") signs');
    alg ??= algOfJwk(input);
    key = (await importJWK(input, alg)) as CryptoKey;
    jwk = input;
  } else {
    // jose signs with a Node KeyObject as it does with a CryptoKey.
    key = input as CryptoKey;
    alg ??= algOfKey(input);
    jwk = typeof (input as CryptoKey).extractable === 'boolean' ? await exportable(input as CryptoKey) : await exportJWK(input);
  }
  const publicJwk = jwk ? publicPart(jwk) : undefined;
  // agent-idp names a key credential by its RFC 7638 thumbprint and replaces any kid the agent
  // registered with it, so the thumbprint beats the JWK's own kid.
  const kid = options.kid ?? (publicJwk ? await calculateJwkThumbprint(publicJwk) : undefined);
  return { key, alg: alg!, kid, publicJwk };
}
