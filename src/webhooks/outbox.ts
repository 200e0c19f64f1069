import type { AuditEvent } from '../audit/audit-event.ts';
import type { AuditFollower } from '../audit/audit.writer.ts';
import type { Queryable } from '../audit/audit.repository.ts';
import { isWebhookEvent } from './webhook-events.ts';
import type { OutboxEvent, WebhooksRepository } from './webhooks.repository.ts';

// The durable outbox, fed by the audit writer (AuditFollower): the deliveries an event causes
// are inserted in the same transaction as the event, so a committed event always has its
// deliveries and an event that failed to commit has none. Only events that can reach a webhook
// are followed; token.issued and token.introspected never are, so /token batches are stored as
// before, in one INSERT.

/** The Standard Webhooks `data` member of an event (design/events.md). */
export function webhookData(e: Pick<AuditEvent, 'eventId' | 'orgId' | 'actor' | 'action' | 'target' | 'outcome' | 'details'>): Record<string, unknown> {
  return { eventId: e.eventId, orgId: e.orgId, actor: e.actor, action: e.action, target: e.target, outcome: e.outcome, details: e.details };
}

export class WebhookOutbox implements AuditFollower {
  readonly #repo: WebhooksRepository;
  #onCommitted: () => void = () => {};

  constructor(repo: WebhooksRepository) {
    this.#repo = repo;
  }

  /** Called after deliveries may have been committed (the sender wakes rather than wait for its poll). */
  onCommitted(listener: () => void): void {
    this.#onCommitted = listener;
  }

  wants(event: AuditEvent): boolean {
    return isWebhookEvent(event);
  }

  async store(events: AuditEvent[], db: Queryable): Promise<void> {
    const outbox: OutboxEvent[] = events.map((e) => ({ eventId: e.eventId, orgId: e.orgId!, type: e.action, occurredAt: e.occurredAt, data: webhookData(e) }));
    await this.#repo.deriveDeliveries(outbox, db);
  }

  committed(): void {
    this.#onCommitted();
  }
}
