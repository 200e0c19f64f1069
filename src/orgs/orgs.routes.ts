import type Router from '@koa/router';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { managementEvent } from '../audit/events.ts';
import type { SettleStep } from '../coherence/settled.ts';
import type { ManagementState } from '../http/state.ts';
import { body, query, validate } from '../http/validate.ts';
import { requireScope } from '../policies/scopes.ts';
import type { OrgsService } from './orgs.service.ts';
import { presentOrg } from './orgs.presenter.ts';

const CreateOrg = body('CreateOrgRequest');
const OrgList = query('PageQuery');
const UpdateOrg = body('UpdateOrgRequest');

export interface OrgsRoutesDeps {
  orgs: OrgsService;
  auditWriter: Pick<AuditWriter, 'write'>;
  settled: SettleStep;
}

// Operators only: orgs are the whole service's.
export function orgsRoutes(router: Router<ManagementState>, { orgs, auditWriter, settled }: OrgsRoutesDeps): void {
  router.post('/orgs', requireScope('orgs:write', { operator: true }), validate(CreateOrg), settled, async (ctx) => {
    const { org, admin, adminSecret } = await orgs.create(CreateOrg.of(ctx).name);
    await auditWriter.write(managementEvent(ctx, 'org.created', { type: 'org', id: org.id }, { name: org.name, adminAgentId: admin.id }));
    ctx.status = 201;
    ctx.body = { ...presentOrg(org), admin: { agentId: admin.id, clientId: admin.id, clientSecret: adminSecret } };
  });

  router.get('/orgs', requireScope('orgs:read', { operator: true }), validate(OrgList), async (ctx) => {
    const { page, limit } = OrgList.of(ctx);
    const { rows, total } = await orgs.list({ page, limit });
    ctx.body = { data: rows.map(presentOrg), total, page, limit };
  });

  router.get('/orgs/:orgId', requireScope('orgs:read', { operator: true }), async (ctx) => {
    ctx.body = presentOrg(await orgs.get(ctx.params.orgId));
  });

  // settled: /token reads an org's tokensPerMinutePerAgent, so every instance has the new limits before the answer.
  router.patch('/orgs/:orgId', requireScope('orgs:write', { operator: true }), validate(UpdateOrg), settled, async (ctx) => {
    const { before, after } = await orgs.update(ctx.params.orgId, UpdateOrg.of(ctx));
    const facts = (org: typeof before) => ({ name: org.name, limits: org.limits });
    await auditWriter.write(managementEvent(ctx, 'org.updated', { type: 'org', id: after.id }, { before: facts(before), after: facts(after) }));
    ctx.body = presentOrg(after);
  });
}
