import { randomUUID } from 'node:crypto';
import { LimitReached, NotFound, ValidationFailed } from '../http/errors.ts';
import { newEventId } from '../audit/audit-event.ts';
import { encryptionKeyId } from '../keys/key-encryption.ts';
import type { Delivery, DeliveryStatus, Webhook } from './webhook.entity.ts';
import type { WebhooksRepository } from './webhooks.repository.ts';
import { encryptWebhookSecret, generateWebhookSecret } from './webhook-secrets.ts';
import { unknownPatterns, WEBHOOK_EVENT_TYPES, WEBHOOK_TEST_EVENT } from './webhook-events.ts';
import { urlProblem, type TargetPolicy } from './webhook-target.ts';

// The rules of webhooks: what a URL and a subscription may be, the secret shown once and
// stored encrypted, rotation with a grace period during which both secrets sign, the test event.

/** Bounds the fan-out of one event (and the work of one org's senders). */
export const MAX_WEBHOOKS_PER_ORG = 20;
export const DELIVERIES_LIMIT_DEFAULT = 50;

export interface WebhookInput {
  url: string;
  events: string[];
  description?: string | null;
  enabled?: boolean;
}

export interface WebhooksServiceOptions extends TargetPolicy {
  masterKey: Buffer;
  clock: () => number;
  /** A delivery was queued outside the audit writer (the test event): the sender may go at once. */
  onQueued?: () => void;
}

export class WebhooksService {
  readonly #repo: WebhooksRepository;
  readonly #options: WebhooksServiceOptions;

  constructor(repo: WebhooksRepository, options: WebhooksServiceOptions) {
    this.#repo = repo;
    this.#options = options;
  }

  async create(orgId: string, input: WebhookInput): Promise<{ webhook: Webhook; secret: string }> {
    this.#check(input);
    if ((await this.#repo.countInOrg(orgId)) >= MAX_WEBHOOKS_PER_ORG) {
      throw new LimitReached('maxWebhooks', `an org holds at most ${MAX_WEBHOOKS_PER_ORG} webhooks; delete one first`);
    }
    const id = randomUUID();
    const secret = generateWebhookSecret();
    const now = new Date(this.#options.clock());
    const webhook: Webhook = {
      id,
      orgId,
      url: input.url,
      events: [...new Set(input.events)],
      description: input.description ?? null,
      enabled: input.enabled ?? true,
      secretEnc: encryptWebhookSecret(this.#options.masterKey, id, secret),
      previousSecretEnc: null,
      previousExpiresAt: null,
      encryptionKeyId: encryptionKeyId(this.#options.masterKey),
      failingSince: null,
      disabledReason: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.#repo.insert(webhook);
    return { webhook, secret };
  }

  list(orgId: string): Promise<Webhook[]> {
    return this.#repo.listInOrg(orgId);
  }

  async get(orgId: string, id: string): Promise<Webhook> {
    const webhook = await this.#repo.findInOrg(orgId, id);
    if (!webhook) throw new NotFound(`webhook ${id} not found`);
    return webhook;
  }

  /** Re-enabling clears the failure record: the endpoint gets a fresh WEBHOOK_DISABLE_AFTER_HOURS. */
  async update(orgId: string, id: string, changes: Partial<WebhookInput>): Promise<{ before: Webhook; after: Webhook }> {
    const before = await this.get(orgId, id);
    this.#check({ url: changes.url ?? before.url, events: changes.events ?? before.events });
    const reenabled = changes.enabled === true && !before.enabled;
    const after = await this.#repo.update(
      orgId,
      id,
      {
        url: changes.url,
        events: changes.events ? [...new Set(changes.events)] : undefined,
        description: changes.description,
        enabled: changes.enabled,
        ...(reenabled ? { failingSince: null, disabledReason: null } : {}),
      },
      new Date(this.#options.clock()),
    );
    if (!after) throw new NotFound(`webhook ${id} not found`);
    return { before, after };
  }

  async delete(orgId: string, id: string): Promise<void> {
    if (!(await this.#repo.delete(orgId, id))) throw new NotFound(`webhook ${id} not found`);
  }

  /** A new secret, shown once; the replaced one keeps signing too for gracePeriodSeconds (default 0). */
  async rotateSecret(orgId: string, id: string, gracePeriodSeconds = 0): Promise<{ webhook: Webhook; secret: string }> {
    const before = await this.get(orgId, id);
    const secret = generateWebhookSecret();
    const now = this.#options.clock();
    const webhook = await this.#repo.update(
      orgId,
      id,
      {
        secretEnc: encryptWebhookSecret(this.#options.masterKey, id, secret),
        previousSecretEnc: gracePeriodSeconds > 0 ? before.secretEnc : null,
        previousExpiresAt: gracePeriodSeconds > 0 ? new Date(now + gracePeriodSeconds * 1000) : null,
      },
      new Date(now),
    );
    if (!webhook) throw new NotFound(`webhook ${id} not found`);
    return { webhook, secret };
  }

  /** Queues a webhook.test event for this webhook alone, due at once (whatever its patterns say). */
  async sendTest(orgId: string, id: string, actor: { type: string; id: string }): Promise<Delivery> {
    const webhook = await this.get(orgId, id);
    const now = new Date(this.#options.clock());
    const eventId = newEventId(now);
    const delivery: Delivery = {
      id: randomUUID(),
      webhookId: webhook.id,
      orgId,
      eventId,
      type: WEBHOOK_TEST_EVENT,
      occurredAt: now,
      data: {
        eventId,
        orgId,
        actor,
        action: WEBHOOK_TEST_EVENT,
        target: { type: 'webhook', id: webhook.id },
        outcome: 'success',
        details: { message: 'a test event, sent on request' },
      },
      status: 'pending',
      attempts: 0,
      nextAttemptAt: now,
      lastStatusCode: null,
      lastError: null,
      deliveredAt: null,
      createdAt: now,
    };
    await this.#repo.insertDelivery(delivery);
    this.#options.onQueued?.();
    return delivery;
  }

  async deliveries(orgId: string, id: string, query: { status?: DeliveryStatus; cursor?: string; limit?: number }) {
    await this.get(orgId, id);
    return this.#repo.deliveriesPage(orgId, id, query.status, query.limit ?? DELIVERIES_LIMIT_DEFAULT, query.cursor);
  }

  #check(input: Pick<WebhookInput, 'url' | 'events'>): void {
    const errors = [];
    const problem = urlProblem(input.url, this.#options);
    if (problem) errors.push({ field: '/url', message: problem });
    for (const pattern of unknownPatterns(input.events)) {
      errors.push({
        field: `/events/${input.events.indexOf(pattern)}`,
        message: `${pattern} is not an event type (known: ${WEBHOOK_EVENT_TYPES.join(', ')}, or prefix.*)`,
      });
    }
    if (errors.length) throw new ValidationFailed(`the webhook is invalid: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`, errors);
  }
}
