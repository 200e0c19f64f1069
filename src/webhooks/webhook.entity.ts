// A webhook and its deliveries as stored (migrations/1763769601200-CreateWebhooks.ts). Plain
// SQL in webhooks.repository.ts: the outbox's claims (FOR UPDATE SKIP LOCKED) and the
// derivation inside the audit writer's transaction are statements TypeORM does not write.

export interface Webhook {
  id: string;
  orgId: string;
  url: string;
  /** Exact event types or `prefix.*` (webhook-events.ts). */
  events: string[];
  description: string | null;
  enabled: boolean;
  /** AES-256-GCM ciphertext of the secret (webhook-secrets.ts). */
  secretEnc: string;
  /** The secret a rotation replaced, still signing until previousExpiresAt. */
  previousSecretEnc: string | null;
  previousExpiresAt: Date | null;
  encryptionKeyId: string;
  failingSince: Date | null;
  disabledReason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface Delivery {
  id: string;
  webhookId: string;
  orgId: string;
  eventId: string;
  type: string;
  occurredAt: Date;
  /** The Standard Webhooks `data` member. */
  data: Record<string, unknown>;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: Date | null;
  createdAt: Date;
}
