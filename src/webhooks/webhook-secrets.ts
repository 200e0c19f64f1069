import { createHmac, randomBytes } from 'node:crypto';
import { decryptPrivateKey, encryptPrivateKey } from '../keys/key-encryption.ts';

// A webhook's signing secret: `whsec_` + base64 of 32 random bytes, as the Standard Webhooks
// libraries take it. Stored as AES-256-GCM ciphertext under KEY_ENCRYPTION_KEY (the same
// scheme as private signing keys), bound to its webhook by the additional data.

export const WEBHOOK_SECRET_PREFIX = 'whsec_';

export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(32).toString('base64');
}

const aad = (webhookId: string) => `webhook-secret:${webhookId}`;

export function encryptWebhookSecret(masterKey: Buffer, webhookId: string, secret: string): string {
  return encryptPrivateKey(masterKey, secret, aad(webhookId));
}

export function decryptWebhookSecret(masterKey: Buffer, webhookId: string, stored: string): string {
  return decryptPrivateKey(masterKey, stored, aad(webhookId));
}

/**
 * Standard Webhooks, "Signature scheme": base64 of HMAC-SHA256 over `<id>.<timestamp>.<body>`,
 * keyed with the secret's decoded bytes, as `v1,<signature>`; several are space-separated
 * (during a rotation's grace period both the new and the previous secret sign).
 */
export function signatureHeader(secrets: string[], id: string, timestampSeconds: number, body: string): string {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.slice(WEBHOOK_SECRET_PREFIX.length), 'base64');
      return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
    })
    .join(' ');
}
