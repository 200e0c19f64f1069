import type { Logger } from '../lib/logger.ts';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { schedulerEvent } from '../audit/events.ts';
import { HOUR_MS } from '../lib/time.ts';
import type { Delivery, Webhook } from './webhook.entity.ts';
import type { WebhooksRepository } from './webhooks.repository.ts';
import type { DeliverySender } from './delivery-sender.ts';
import { decryptWebhookSecret, signatureHeader } from './webhook-secrets.ts';

// Sends what the outbox holds, on every instance: each pass claims the due deliveries (SKIP
// LOCKED, so each attempt is one instance's), makes one attempt each, and records the outcome.
// A failure is retried with exponential backoff and jitter (base WEBHOOK_RETRY_BASE_SECONDS,
// doubling) for up to a day, then the delivery is failed; an endpoint that has not succeeded
// for WEBHOOK_DISABLE_AFTER_HOURS is disabled and that is audited (webhook.disabled).

export interface DeliveryWorkerOptions {
  retryBaseSeconds: number;
  disableAfterHours: number;
  /** The wall clock in ms (tests drive it: the container's clock). */
  clock: () => number;
  /** Between passes when nothing wakes the worker (default 1 s). */
  pollMs?: number;
  /** Deliveries claimed per pass (default 20). */
  batchSize?: number;
}

/** How long a delivery is retried, from its event (design/events.md: 24 h). */
export const RETRY_FOR_MS = 24 * HOUR_MS;
/** The longest single wait between two attempts. */
const MAX_DELAY_MS = 6 * HOUR_MS;
/** A claimed row is tried again after this if its sender died mid-attempt: above the 10 s time-out. */
const CLAIM_LEASE_MS = 60_000;

/**
 * The wait before attempt n+1 after n failed ones: base·2^(n−1), the upper half of it drawn at
 * random ("equal jitter"), so that the retries of many deliveries spread out.
 */
export function retryDelayMs(failedAttempts: number, baseSeconds: number, random: () => number = Math.random): number {
  const full = Math.min(MAX_DELAY_MS, baseSeconds * 1000 * 2 ** Math.max(0, failedAttempts - 1));
  return Math.round(full / 2 + random() * (full / 2));
}

export interface DeliveryWorkerDeps {
  repo: WebhooksRepository;
  sender: DeliverySender;
  masterKey: Buffer;
  auditWriter: Pick<AuditWriter, 'write'>;
  logger: Logger;
}

export class DeliveryWorker {
  readonly #deps: DeliveryWorkerDeps;
  readonly #options: Required<DeliveryWorkerOptions>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;

  constructor(deps: DeliveryWorkerDeps, options: DeliveryWorkerOptions) {
    this.#deps = deps;
    this.#options = { pollMs: 1_000, batchSize: 20, ...options };
  }

  start(): void {
    this.#stopped = false;
    this.#timer = setInterval(() => this.wake(), this.#options.pollMs);
    this.#timer.unref();
    this.wake();
  }

  /** Makes a pass now (or right after the one running). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#passes().finally(() => {
      this.#running = undefined;
    });
  }

  /** Stops polling; resolves once the attempts in flight are recorded. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  async #passes(): Promise<void> {
    do {
      this.#again = false;
      try {
        while (!this.#stopped && (await this.runOnce()) === this.#options.batchSize);
      } catch (err) {
        this.#deps.logger.warn('webhook deliveries: a pass failed; the next one tries again', { err });
      }
    } while (this.#again && !this.#stopped);
  }

  /** One pass: claims the due deliveries and attempts each once. Returns how many it claimed. */
  async runOnce(): Promise<number> {
    const now = this.#options.clock();
    const claimed = await this.#deps.repo.claimDue(new Date(now), new Date(now + CLAIM_LEASE_MS), this.#options.batchSize);
    await Promise.all(claimed.map(({ delivery, webhook }) => this.#attempt(delivery, webhook)));
    return claimed.length;
  }

  async #attempt(delivery: Delivery, webhook: Webhook): Promise<void> {
    const { repo, sender, masterKey, logger } = this.#deps;
    const startedAt = this.#options.clock();
    const timestamp = Math.floor(startedAt / 1000);
    const body = JSON.stringify({ type: delivery.type, timestamp: delivery.occurredAt.toISOString(), data: delivery.data });
    let result;
    try {
      const secrets = [decryptWebhookSecret(masterKey, webhook.id, webhook.secretEnc)];
      if (webhook.previousSecretEnc && webhook.previousExpiresAt && webhook.previousExpiresAt.getTime() > startedAt) {
        secrets.push(decryptWebhookSecret(masterKey, webhook.id, webhook.previousSecretEnc));
      }
      const headers = {
        // Standard Webhooks: the id is the event's, so that a receiver dedupes retries on it.
        'webhook-id': delivery.eventId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(secrets, delivery.eventId, timestamp, body),
      };
      result = await sender.send(webhook.url, headers, body);
    } catch (err) {
      // A secret that cannot be decrypted (another KEY_ENCRYPTION_KEY): retried like any failure.
      logger.error('webhook delivery could not be prepared', { webhookId: webhook.id, deliveryId: delivery.id, err });
      result = { ok: false, statusCode: null, error: 'the delivery could not be prepared (see the server log)' };
    }
    const at = new Date(this.#options.clock());
    if (result.ok) {
      await repo.recordDelivered(delivery, result.statusCode!, at);
      return;
    }
    const retryAt = at.getTime() + retryDelayMs(delivery.attempts, this.#options.retryBaseSeconds);
    const giveUp = retryAt - delivery.createdAt.getTime() > RETRY_FOR_MS;
    const failingSince = await repo.recordFailure(delivery, result.statusCode, result.error ?? 'failed', giveUp ? null : new Date(retryAt), at);
    logger.info('webhook delivery failed', {
      webhookId: webhook.id,
      deliveryId: delivery.id,
      attempts: delivery.attempts,
      statusCode: result.statusCode,
      error: result.error,
      retryAt: giveUp ? null : new Date(retryAt).toISOString(),
    });
    if (at.getTime() - failingSince.getTime() >= this.#options.disableAfterHours * HOUR_MS) await this.#disable(webhook, failingSince, at);
  }

  async #disable(webhook: Webhook, failingSince: Date, at: Date): Promise<void> {
    const reason = `no successful delivery since ${failingSince.toISOString()} (${this.#options.disableAfterHours} h)`;
    if (!(await this.#deps.repo.disableFailing(webhook.orgId, webhook.id, reason, at))) return;
    this.#deps.logger.warn('webhook disabled after failing too long', {
      webhookId: webhook.id,
      orgId: webhook.orgId,
      failingSince: failingSince.toISOString(),
    });
    await this.#deps.auditWriter
      .write(
        schedulerEvent(
          'webhook-delivery',
          'webhook.disabled',
          { type: 'webhook', id: webhook.id },
          { reason: 'failing', failingSince: failingSince.toISOString(), disableAfterHours: this.#options.disableAfterHours },
          webhook.orgId,
        ),
      )
      .catch((err: unknown) => this.#deps.logger.error('could not audit a disabled webhook', { webhookId: webhook.id, err }));
  }
}
