import type Router from '@koa/router';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { managementEvent } from '../audit/events.ts';
import type { SettleStep } from '../coherence/settled.ts';
import type { Context } from 'koa';
import { validateBody, validateQuery } from '../http/validate.ts';
import { requireScope } from '../policies/scopes.ts';
import type { OrgsService } from './orgs.service.ts';
import { presentOrg } from './orgs.presenter.ts';

export interface OrgsRoutesDeps {
  orgs: OrgsService;
  auditWriter: Pick<AuditWriter, 'write'>;
  settled: SettleStep;
}

// Operators only: orgs are the whole service's.
export function orgsRoutes(router: Router, { orgs, auditWriter, settled }: OrgsRoutesDeps): void {
  router.post('/orgs', requireScope('orgs:write', { operator: true }), validateBody('CreateOrgRequest'), settled, async (ctx: Context) => {
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
