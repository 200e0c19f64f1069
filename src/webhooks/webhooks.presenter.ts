import type { Delivery, Webhook } from './webhook.entity.ts';

/** A webhook as the API shows it: never its secret, except once, in the answers of create and rotate-secret. */
export function presentWebhook(w: Webhook, { secret }: { secret?: string } = {}) {
  return {
    webhookId: w.id,
    url: w.url,
    events: w.events,
    description: w.description,
    enabled: w.enabled,
    disabledReason: w.disabledReason,
    createdAt: w.createdAt.toISOString(),
    updatedAt: w.updatedAt.toISOString(),
    ...(secret !== undefined ? { secret } : {}),
  };
}

export function presentDelivery(d: Delivery) {
  return {
    deliveryId: d.id,
    eventId: d.eventId,
    type: d.type,
    status: d.status,
    attempts: d.attempts,
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    nextAttemptAt: d.status === 'pending' && d.nextAttemptAt ? d.nextAttemptAt.toISOString() : null,
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
    createdAt: d.createdAt.toISOString(),
  };
}
