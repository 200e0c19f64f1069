import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importJWK, type JWK } from 'jose';
import type { SigningAlg } from '../../config/index.ts';
import { ValidationFailed } from '../http/errors.ts';
import type { PublicJwk } from './credential.entity.ts';

// The keys of private_key_jwt credentials (RFC 7523 §2.2): generated here, the private half
// handed out once and forgotten, or brought by the agent as a public JWK. Only asymmetric
// signing keys of the service's algorithms (config SIGNING_ALGS); `kid` is always the RFC 7638
// thumbprint, so the same key has the same kid wherever it is registered.

/** Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The public members of each key type: all that is stored. */
const PUBLIC_MEMBERS: Record<string, string[]> = { RSA: ['n', 'e'], EC: ['crv', 'x', 'y'], OKP: ['crv', 'x'] };

/** Which algorithms a key of each type and curve signs with. */
function algorithmsFor(jwk: JWK): readonly SigningAlg[] {
  if (jwk.kty === 'RSA') return ['RS256', 'PS256'];
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return ['ES256'];
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return ['EdDSA'];
  return [];
}

const MIN_RSA_BITS = 2048;

export interface GeneratedKeyPair {
  publicJwk: PublicJwk;
  kid: string;
  alg: SigningAlg;
  /** Shown once, never stored. */
  privateKeyPem: string;
  privateJwk: JWK;
}

function invalid(field: string, message: string): never {
  throw new ValidationFailed(`${field.slice(1).replace(/\//g, '.')} ${message}`, [{ field, message }]);
}

async function normalized(jwk: JWK, alg: SigningAlg): Promise<PublicJwk> {
  const members = Object.fromEntries(PUBLIC_MEMBERS[jwk.kty!].map((m) => [m, String(jwk[m as keyof JWK])]));
  const kid = await calculateJwkThumbprint({ kty: jwk.kty, ...members } as JWK, 'sha256');
  return { kty: jwk.kty!, ...members, kid, alg, use: 'sig' };
}

/** A new pair for `alg`: the public JWK to store and the private key to show once. */
export async function generateKeyPairFor(alg: SigningAlg): Promise<GeneratedKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined, modulusLength: 2048 });
  const publicJwk = await normalized(await exportJWK(publicKey), alg);
  const privateJwk = { ...(await exportJWK(privateKey)), kid: publicJwk.kid, alg, use: 'sig' };
  return { publicJwk, kid: publicJwk.kid, alg, privateKeyPem: await exportPKCS8(privateKey), privateJwk };
}

/**
 * An agent's own public key, checked member by member: asymmetric, public members only, a
 * curve or RSA size we accept, an algorithm it can sign with (`alg` in the request, else the
 * JWK's own, else the only one its type has; RSA defaults to RS256). 400 naming the field.
 */
export async function acceptPublicJwk(
  input: unknown,
  requestedAlg: SigningAlg | undefined,
  field = '/publicJwk',
): Promise<{ publicJwk: PublicJwk; alg: SigningAlg }> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) invalid(field, 'must be a JWK object');
  const jwk = input as JWK & Record<string, unknown>;
  for (const member of PRIVATE_MEMBERS) {
    if (member in jwk) invalid(`${field}/${member}`, 'must not be given: only the public key is registered, never a private or symmetric key');
  }
  if (jwk.kty === 'oct') invalid(`${field}/kty`, 'must not be "oct": symmetric keys are not accepted');
  if (typeof jwk.kty !== 'string' || !(jwk.kty in PUBLIC_MEMBERS)) invalid(`${field}/kty`, 'must be "RSA", "EC" or "OKP"');
  for (const member of PUBLIC_MEMBERS[jwk.kty]) {
    if (typeof jwk[member] !== 'string' || !/^[A-Za-z0-9_-]+$/.test(jwk[member] as string)) invalid(`${field}/${member}`, 'must be a base64url string');
  }
  const supported = algorithmsFor(jwk);
  if (supported.length === 0) invalid(`${field}/crv`, `must be P-256 (EC) or Ed25519 (OKP), got "${String(jwk.crv).slice(0, 20)}"`);
  if (jwk.kty === 'RSA') {
    const bits = Buffer.from(jwk.n as string, 'base64url').length * 8;
    if (bits < MIN_RSA_BITS) invalid(`${field}/n`, `must be an RSA modulus of at least ${MIN_RSA_BITS} bits, got ${bits}`);
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') invalid(`${field}/use`, 'must be "sig" when given');
  if (jwk.alg !== undefined && !supported.includes(jwk.alg as SigningAlg)) invalid(`${field}/alg`, `must be one of ${supported.join(', ')} for this key`);
  if (requestedAlg !== undefined && !supported.includes(requestedAlg)) invalid('/alg', `must be one of ${supported.join(', ')} for this key`);
  if (requestedAlg !== undefined && jwk.alg !== undefined && jwk.alg !== requestedAlg) invalid('/alg', `must match the JWK's alg "${jwk.alg}"`);
  const alg = requestedAlg ?? (jwk.alg as SigningAlg | undefined) ?? supported[0];
  // The points must make a key: a bad x/y or modulus is found now, not at the first assertion.
  try {
    await importJWK({ kty: jwk.kty, ...Object.fromEntries(PUBLIC_MEMBERS[jwk.kty].map((m) => [m, jwk[m]])) } as JWK, alg);
  } catch {
    invalid(field, 'is not a valid public key');
  }
  return { publicJwk: await normalized(jwk, alg), alg };
}
