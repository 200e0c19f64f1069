import type Router from '@koa/router';
import type { Context } from 'koa';
import { requireScope } from '../policies/scopes.ts';
import { validateBody } from '../http/validate.ts';
import type { Services } from '../app/services.ts';
import { managementEvent } from '../audit/events.ts';
import { presentKey } from './keys.presenter.ts';

// Operators only: keys are the whole service's.
export function keysRoutes(router: Router, { keys, auditWriter }: Services): void {
  const read = requireScope('keys:read', { operator: true });
  const write = requireScope('keys:write', { operator: true });
  const target = (kid: string) => ({ type: 'key', id: kid });

  router.get('/keys', read, async (ctx: Context) => {
    ctx.body = { data: (await keys.list()).map(presentKey) };
  });

  router.post('/keys', write, validateBody('CreateKeyRequest', { optional: true }), async (ctx: Context) => {
    const key = await keys.create(ctx.state.input.alg);
    await auditWriter.write(managementEvent(ctx, 'key.created', target(key.kid), { alg: key.alg, status: key.status }));
    ctx.status = 201;
    ctx.body = presentKey(key);
  });

  router.post('/keys/rotate', write, validateBody('EmptyRequest', { optional: true }), async (ctx: Context) => {
    const { retired, active, next } = await keys.rotate();
    await auditWriter.write(managementEvent(ctx, 'key.rotated', target(active.kid), { retired: retired?.kid ?? null, active: active.kid, next: next.kid }));
    ctx.body = { active: presentKey(active), next: presentKey(next) };
  });

  router.get('/keys/active', read, async (ctx: Context) => {
    ctx.body = presentKey(await keys.active());
  });

  router.post('/keys/:kid/revoke', write, validateBody('EmptyRequest', { optional: true }), async (ctx: Context) => {
    const key = await keys.revoke(ctx.params.kid);
    await auditWriter.write(managementEvent(ctx, 'key.revoked', target(key.kid), { alg: key.alg }));
    ctx.body = presentKey(key);
  });

  router.delete('/keys/:kid', write, async (ctx: Context) => {
    await keys.remove(ctx.params.kid);
    await auditWriter.write(managementEvent(ctx, 'key.deleted', target(ctx.params.kid)));
    ctx.status = 204;
  });
}
