import type Router from '@koa/router';
import type { Context } from 'koa';
import { requireScope } from '../policies/scopes.ts';
import { validateBody, validateQuery } from '../http/validate.ts';
import type { Services } from '../app/services.ts';
import { managementEvent } from '../audit/events.ts';
import { presentOrg } from './orgs.presenter.ts';

export function orgsRoutes(router: Router, { orgs, auditWriter }: Services): void {
  router.post('/orgs', requireScope('orgs:write', { operator: true }), validateBody('CreateOrgRequest'), async (ctx: Context) => {
    const { org, admin, adminSecret } = await orgs.create(ctx.state.input.name);
    await auditWriter.write(managementEvent(ctx, 'org.created', { type: 'org', id: org.id }, { name: org.name, adminAgentId: admin.id }));
    ctx.status = 201;
    ctx.body = { ...presentOrg(org), admin: { agentId: admin.id, clientId: admin.id, clientSecret: adminSecret } };
  });

  router.get('/orgs', requireScope('orgs:read', { operator: true }), validateQuery('PageQuery'), async (ctx: Context) => {
    const { page, limit } = ctx.state.query;
    const { rows, total } = await orgs.list({ page, limit });
    ctx.body = { data: rows.map(presentOrg), total, page, limit };
  });
}
