import { createPublicKey } from 'node:crypto';
import type { SigningKey } from './signing-key.entity.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** A signing key as the API shows it: the public half only, always. */
export function presentKey(key: SigningKey) {
  return {
    kid: key.kid,
    alg: key.alg,
    status: key.status,
    createdAt: key.createdAt.toISOString(),
    activatedAt: iso(key.activatedAt),
    retiredAt: iso(key.retiredAt),
    revokedAt: iso(key.revokedAt),
    publicJwk: key.publicJwk,
  };
}

/** For GET /keys/public/{kid}: the public key as PEM and as a JWK. */
export function presentPublicKey(key: Pick<SigningKey, 'kid' | 'alg' | 'publicJwk'>) {
  const pem = createPublicKey({ key: key.publicJwk as never, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
  return { kid: key.kid, alg: key.alg, publicKey: pem, jwk: key.publicJwk };
}
