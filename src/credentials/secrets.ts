import { randomBytes, createHash } from 'node:crypto';

// A client secret: `aidp_cs_<credential id as 32 hex>_<256 random bits, base64url>`.
// The prefix lets secret scanners find leaked secrets; the credential id lets the server check
// the one credential the secret names with a single bcrypt compare.

export const SECRET_PREFIX = 'aidp_cs_';
const SECRET_PATTERN = /^aidp_cs_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export function generateSecret(credentialId: string): string {
  return `${SECRET_PREFIX}${credentialId.replace(/-/g, '')}_${randomBytes(32).toString('base64url')}`;
}

/** The credential id a secret names, or undefined when it is not one of ours. */
export function credentialIdOf(secret: string): string | undefined {
  const match = SECRET_PATTERN.exec(secret);
  if (!match) return undefined;
  const hex = match[1];
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * SHA-256 of the secret: what bcrypt hashes (bcrypt ignores input past 72 bytes, and a secret
 * is 84 characters) and what the verified-secret memory keys on, so neither holds the secret.
 */
export function secretDigest(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}
