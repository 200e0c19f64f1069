import type { MigrationInterface, QueryRunner } from 'typeorm';

// Webhooks (design/events.md) and their durable outbox. A delivery row is written in the same
// transaction as the audit event that causes it (src/audit/audit.writer.ts with
// src/webhooks/outbox.ts), so an acknowledged event is never lost on a crash; senders claim due
// rows with FOR UPDATE SKIP LOCKED, so each attempt is made by one instance.
// credential_expiry_notices remembers which credentials were announced as expiring or expired,
// so that each is announced once (the primary key is the claim among instances).
export class CreateWebhooks1763769601200 implements MigrationInterface {
  name = 'CreateWebhooks1763769601200';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE webhooks (
        id                      uuid PRIMARY KEY,
        org_id                  uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
        url                     text NOT NULL,
        events                  text[] NOT NULL,
        description             text,
        enabled                 boolean NOT NULL DEFAULT true,
        -- AES-256-GCM under KEY_ENCRYPTION_KEY (src/keys/key-encryption.ts); never plaintext.
        secret_enc              text NOT NULL,
        previous_secret_enc     text,
        previous_expires_at     timestamptz,
        encryption_key_id       text NOT NULL,
        -- The first failure since the last success: the endpoint is disabled once it is older than WEBHOOK_DISABLE_AFTER_HOURS.
        failing_since           timestamptz,
        disabled_reason         text,
        created_at              timestamptz NOT NULL,
        updated_at              timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX webhooks_org ON webhooks (org_id, created_at, id)`);
    await q.query(`
      CREATE TABLE webhook_deliveries (
        id                uuid PRIMARY KEY,
        webhook_id        uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        org_id            uuid NOT NULL,
        event_id          uuid NOT NULL,
        type              text NOT NULL,
        occurred_at       timestamptz NOT NULL,
        -- The Standard Webhooks "data" member, as it was when the event happened.
        data              jsonb NOT NULL,
        status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts          integer NOT NULL DEFAULT 0,
        next_attempt_at   timestamptz,
        last_status_code  integer,
        last_error        text,
        delivered_at      timestamptz,
        created_at        timestamptz NOT NULL,
        UNIQUE (webhook_id, event_id)
      )`);
    // What the senders poll: due pending rows only.
    await q.query(`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'`);
    await q.query(`CREATE INDEX webhook_deliveries_of_webhook ON webhook_deliveries (org_id, webhook_id, created_at DESC, id DESC)`);
    await q.query(`
      CREATE TABLE credential_expiry_notices (
        credential_id  uuid NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
        kind           text NOT NULL CHECK (kind IN ('expiring_soon', 'expired')),
        -- The expiry announced: a credential whose expiry moves is announced again.
        expires_at     timestamptz NOT NULL,
        noticed_at     timestamptz NOT NULL,
        PRIMARY KEY (credential_id, kind, expires_at)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE credential_expiry_notices`);
    await q.query(`DROP TABLE webhook_deliveries`);
    await q.query(`DROP TABLE webhooks`);
  }
}
