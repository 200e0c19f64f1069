import { constants, verify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';

// The signature check of a compact JWS (RFC 7515 §7.1) with node:crypto's one-shot `verify`, on a
// KeyObject made once when the issuer's JWKS was fetched (issuer-keys.ts): no WebCrypto job and no
// key import per request, which is what jose costs on every assertion. The parameters of each
// `alg` are jose's own (v5's node runtime, src/runtime/node/node_key.ts and dsa_digest.ts, and v6's
// src/lib/jws_algorithms.ts): RSASSA-PKCS1-v1_5 for RS*, RSA-PSS with a salt as long as the digest
// for PS* (RFC 7518 §3.5), ECDSA over the curve the alg names with the signature as R || S
// (IEEE P1363, RFC 7518 §3.4: never DER), Ed25519 for EdDSA (RFC 8037; jose 6 verifies no Ed448).
// RSA keys shorter than 2048 bits are refused (RFC 7518 §3.3). HS* and `none` have no entry.

interface AlgParameters {
  /** The key type a KeyObject must have (asymmetricKeyType). */
  keyType: 'rsa' | 'ec' | 'ed25519';
  /** The digest, or undefined for EdDSA (the curve fixes it). */
  digest: 'sha256' | 'sha384' | 'sha512' | undefined;
  /** ECDSA: the curve (node's name, asymmetricKeyDetails.namedCurve). */
  curve?: string;
  pss?: true;
}

const ALGS: Record<string, AlgParameters> = {
  RS256: { keyType: 'rsa', digest: 'sha256' },
  RS384: { keyType: 'rsa', digest: 'sha384' },
  RS512: { keyType: 'rsa', digest: 'sha512' },
  PS256: { keyType: 'rsa', digest: 'sha256', pss: true },
  PS384: { keyType: 'rsa', digest: 'sha384', pss: true },
  PS512: { keyType: 'rsa', digest: 'sha512', pss: true },
  ES256: { keyType: 'ec', digest: 'sha256', curve: 'prime256v1' },
  ES384: { keyType: 'ec', digest: 'sha384', curve: 'secp384r1' },
  ES512: { keyType: 'ec', digest: 'sha512', curve: 'secp521r1' },
  EdDSA: { keyType: 'ed25519', digest: undefined },
  Ed25519: { keyType: 'ed25519', digest: undefined },
};

/** The JWS algorithms verified here: asymmetric only. */
export const JWS_VERIFY_ALGS: readonly string[] = Object.keys(ALGS);

/** The JWK key type (kty) and curve (crv) that an alg needs (RFC 7518 §6, RFC 8037 §2): what a JWKS member must declare to be chosen. */
export function jwkTypeFor(alg: string): { kty: 'RSA' | 'EC' | 'OKP'; crv?: string } | undefined {
  const params = Object.hasOwn(ALGS, alg) ? ALGS[alg] : undefined;
  if (!params) return undefined;
  if (params.keyType === 'rsa') return { kty: 'RSA' };
  if (params.keyType === 'ed25519') return { kty: 'OKP', crv: 'Ed25519' };
  return { kty: 'EC', crv: { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[params.curve!] };
}

/** Whether `key` is a public key that `alg` may verify with: the key type, the curve, an RSA modulus of 2048 bits or more. */
export function keyFitsAlg(alg: string, key: KeyObject): boolean {
  const params = Object.hasOwn(ALGS, alg) ? ALGS[alg] : undefined;
  if (!params || key.type !== 'public' || key.asymmetricKeyType !== params.keyType) return false;
  const details = key.asymmetricKeyDetails;
  if (params.keyType === 'rsa') return (details?.modulusLength ?? 0) >= 2048;
  if (params.keyType === 'ec') return details?.namedCurve === params.curve;
  return true;
}

/** A compact JWS split into its parts (RFC 7515 §7.1), its protected header parsed. */
export interface CompactJws {
  header: Record<string, unknown>;
  /** BASE64URL(header) '.' BASE64URL(payload): what the signature covers. */
  signingInput: string;
  /** The payload, base64url-encoded. */
  encodedPayload: string;
  signature: Buffer;
}

/** base64url without padding (RFC 7515 §2): Buffer's decoder skips any other character silently, so they are refused first. */
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** The parts of a compact JWS, or undefined when `jws` is not one (three base64url parts, a JSON object as header). */
export function parseCompactJws(jws: string): CompactJws | undefined {
  const first = jws.indexOf('.');
  const second = jws.indexOf('.', first + 1);
  if (first <= 0 || second < 0 || jws.indexOf('.', second + 1) !== -1) return undefined;
  const encodedHeader = jws.slice(0, first);
  const encodedPayload = jws.slice(first + 1, second);
  const encodedSignature = jws.slice(second + 1);
  if (!BASE64URL.test(encodedHeader) || !BASE64URL.test(encodedPayload) || !BASE64URL.test(encodedSignature)) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(encodedHeader, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) return undefined;
  return {
    header: header as Record<string, unknown>,
    signingInput: jws.slice(0, second),
    encodedPayload,
    signature: Buffer.from(encodedSignature, 'base64url'),
  };
}

/**
 * Whether `signature` is a good signature of `signingInput` under `alg` with `key`. False for an
 * alg that is not asymmetric (HS*, `none`, anything unknown), a key of another type or curve than
 * the alg's, and an ECDSA signature that is not exactly R || S (a DER one among them).
 */
export function verifyJwsSignature(alg: string, key: KeyObject, signingInput: string, signature: Uint8Array): boolean {
  if (!keyFitsAlg(alg, key)) return false;
  const params = ALGS[alg];
  const input: VerifyKeyObjectInput = params.pss
    ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
    : params.keyType === 'ec'
      ? { key, dsaEncoding: 'ieee-p1363' }
      : { key };
  try {
    // Synchronous: a signature check is tens of microseconds, less than a trip through libuv's pool.
    return verify(params.digest, Buffer.from(signingInput, 'latin1'), input, signature);
  } catch {
    return false;
  }
}
