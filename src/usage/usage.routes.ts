import type Router from '@koa/router';
import { requireScope } from '../policies/scopes.ts';
import type { ManagementState } from '../http/state.ts';
import type { UsageService } from './usage.service.ts';

export function usageRoutes(router: Router<ManagementState>, { usage }: { usage: Pick<UsageService, 'of'> }): void {
  // The caller's own org: what it holds, what it used, and its limits.
  router.get('/usage', requireScope('audit:read'), async (ctx) => {
    ctx.body = await usage.of(ctx.state.actor.orgId);
  });
}
