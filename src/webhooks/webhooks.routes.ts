import type Router from '@koa/router';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { managementEvent } from '../audit/events.ts';
import type { ManagementState } from '../http/state.ts';
import { body, query, validate } from '../http/validate.ts';
import type { SettleStep } from '../coherence/settled.ts';
import { requireScope } from '../policies/scopes.ts';
import type { WebhooksService } from './webhooks.service.ts';
import { presentDelivery, presentWebhook } from './webhooks.presenter.ts';
import type { Webhook } from './webhook.entity.ts';

const CreateWebhook = body('CreateWebhookRequest');
const UpdateWebhook = body('UpdateWebhookRequest');
const RotateWebhookSecret = body('RotateWebhookSecretRequest', { optional: true });
const DeliveryList = query('WebhookDeliveryListQuery');

export interface WebhooksRoutesDeps {
  webhooks: WebhooksService;
  auditWriter: Pick<AuditWriter, 'write'>;
  /** Nothing of a webhook is cached by the instances; the step keeps the rule that every writing route waits for them. */
  settled: SettleStep;
}

/** What an audit event says of a webhook: never its secret. */
const facts = (w: Webhook) => ({ url: w.url, events: w.events, enabled: w.enabled });

export function webhooksRoutes(router: Router<ManagementState>, { webhooks, auditWriter, settled }: WebhooksRoutesDeps): void {
  const target = (id: string) => ({ type: 'webhook', id });

  router.post('/webhooks', requireScope('webhooks:write'), validate(CreateWebhook), settled, async (ctx) => {
    const { webhook, secret } = await webhooks.create(ctx.state.actor.orgId, CreateWebhook.of(ctx));
    await auditWriter.write(managementEvent(ctx, 'webhook.created', target(webhook.id), facts(webhook)));
    ctx.status = 201;
    ctx.body = presentWebhook(webhook, { secret });
  });

  router.get('/webhooks', requireScope('webhooks:read'), async (ctx) => {
    ctx.body = { data: (await webhooks.list(ctx.state.actor.orgId)).map((w) => presentWebhook(w)) };
  });

  router.get('/webhooks/:webhookId', requireScope('webhooks:read'), async (ctx) => {
    ctx.body = presentWebhook(await webhooks.get(ctx.state.actor.orgId, ctx.params.webhookId));
  });

  router.patch('/webhooks/:webhookId', requireScope('webhooks:write'), validate(UpdateWebhook), settled, async (ctx) => {
    const { before, after } = await webhooks.update(ctx.state.actor.orgId, ctx.params.webhookId, UpdateWebhook.of(ctx));
    await auditWriter.write(managementEvent(ctx, 'webhook.updated', target(after.id), { before: facts(before), after: facts(after) }));
    ctx.body = presentWebhook(after);
  });

  router.delete('/webhooks/:webhookId', requireScope('webhooks:write'), settled, async (ctx) => {
    const { webhookId } = ctx.params;
    await webhooks.delete(ctx.state.actor.orgId, webhookId);
    await auditWriter.write(managementEvent(ctx, 'webhook.deleted', target(webhookId)));
    ctx.status = 204;
  });

  router.post('/webhooks/:webhookId/rotate-secret', requireScope('webhooks:write'), validate(RotateWebhookSecret), settled, async (ctx) => {
    const { gracePeriodSeconds = 0 } = RotateWebhookSecret.of(ctx);
    const { webhook, secret } = await webhooks.rotateSecret(ctx.state.actor.orgId, ctx.params.webhookId, gracePeriodSeconds);
    await auditWriter.write(managementEvent(ctx, 'webhook.updated', target(webhook.id), { secretRotated: true, gracePeriodSeconds }));
    ctx.body = presentWebhook(webhook, { secret });
  });

  router.post('/webhooks/:webhookId/test', requireScope('webhooks:write'), settled, async (ctx) => {
    const { actor } = ctx.state;
    const delivery = await webhooks.sendTest(actor.orgId, ctx.params.webhookId, { type: 'agent', id: actor.agentId });
    ctx.status = 202;
    ctx.body = presentDelivery(delivery);
  });

  router.get('/webhooks/:webhookId/deliveries', requireScope('webhooks:read'), validate(DeliveryList), async (ctx) => {
    const { rows, nextCursor } = await webhooks.deliveries(ctx.state.actor.orgId, ctx.params.webhookId, DeliveryList.of(ctx));
    ctx.body = { data: rows.map(presentDelivery), nextCursor };
  });
}
