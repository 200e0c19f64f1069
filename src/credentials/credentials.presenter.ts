import type { Credential } from './credential.entity.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The credential as the API shows it. The secret appears only when asked for, on create and rotate. */
export function presentCredential(credential: Credential, options: { secret?: string; now?: Date } = {}) {
  const now = options.now ?? new Date();
  const expired = credential.status === 'active' && credential.expiresAt !== null && credential.expiresAt <= now;
  const graceOpen = credential.previousExpiresAt !== null && credential.previousExpiresAt > now && credential.status === 'active';
  return {
    credentialId: credential.id,
    clientId: credential.agentId,
    status: expired ? ('expired' as const) : credential.status,
    createdAt: credential.createdAt.toISOString(),
    expiresAt: iso(credential.expiresAt),
    revokedAt: iso(credential.revokedAt),
    rotatedAt: iso(credential.rotatedAt),
    previousSecretExpiresAt: graceOpen ? iso(credential.previousExpiresAt) : null,
    ...(options.secret !== undefined ? { clientSecret: options.secret } : {}),
  };
}
