import type { JWK } from 'jose';
import type { Credential } from './credential.entity.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export interface ShownOnce {
  /** A secret's plaintext, on create and rotate. */
  secret?: string;
  /** A generated key pair's private half, on create and rotate. */
  privateKey?: { pem: string; jwk: JWK };
}

/** The credential as the API shows it. A secret or private key appears only when asked for, on create and rotate. */
export function presentCredential(credential: Credential, options: ShownOnce & { now?: Date } = {}) {
  const now = options.now ?? new Date();
  const expired = credential.status === 'active' && credential.expiresAt !== null && credential.expiresAt <= now;
  const graceOpen = credential.previousExpiresAt !== null && credential.previousExpiresAt > now && credential.status === 'active';
  return {
    credentialId: credential.id,
    clientId: credential.agentId,
    type: credential.type,
    name: credential.name,
    status: expired ? ('expired' as const) : credential.status,
    createdAt: credential.createdAt.toISOString(),
    expiresAt: iso(credential.expiresAt),
    revokedAt: iso(credential.revokedAt),
    rotatedAt: iso(credential.rotatedAt),
    previousSecretExpiresAt: graceOpen ? iso(credential.previousExpiresAt) : null,
    ...(credential.type === 'private_key_jwt' ? { kid: credential.kid!, alg: credential.alg!, publicJwk: credential.publicJwk! } : {}),
    ...(options.secret !== undefined ? { clientSecret: options.secret } : {}),
    ...(options.privateKey !== undefined ? { privateKeyPem: options.privateKey.pem, privateJwk: options.privateKey.jwk } : {}),
  };
}
