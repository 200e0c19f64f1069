import type Router from '@koa/router';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { managementEvent } from '../audit/events.ts';
import type { SettleStep } from '../coherence/settled.ts';
import type { Context } from 'koa';
import { validateBody, validateQuery } from '../http/validate.ts';
import { requireScope } from '../policies/scopes.ts';
import type { AgentsService } from './agents.service.ts';
import { presentAgent } from './agents.presenter.ts';

export interface AgentsRoutesDeps {
  agents: AgentsService;
  auditWriter: Pick<AuditWriter, 'write'>;
  settled: SettleStep;
  /** Shown as accessTokenTtlSeconds of an agent that has none of its own. */
  defaultTtlSeconds: number;
}

export function agentsRoutes(router: Router, { agents, auditWriter, settled, defaultTtlSeconds }: AgentsRoutesDeps): void {
  const present = (agent: Parameters<typeof presentAgent>[0]) => presentAgent(agent, defaultTtlSeconds);

  router.post('/agents', requireScope('agents:write'), validateBody('CreateAgentRequest'), settled, async (ctx: Context) => {
    const agent = await agents.create(ctx.state.actor, ctx.state.input);
    await auditWriter.write(
      managementEvent(ctx, 'agent.created', { type: 'agent', id: agent.id }, { name: agent.name, scopes: agent.scopes, audiences: agent.audiences }),
    );
    ctx.status = 201;
    ctx.set('Location', `/api/v1/agents/${agent.id}`);
    ctx.body = present(agent);
  });

  router.get('/agents', requireScope('agents:read'), validateQuery('AgentListQuery'), async (ctx: Context) => {
    const { page, limit, status } = ctx.state.query;
    const { rows, total } = await agents.list(ctx.state.actor.orgId, { status }, { page, limit });
    ctx.body = { data: rows.map(present), total, page, limit };
  });

  router.get('/agents/:agentId', requireScope('agents:read'), async (ctx: Context) => {
    ctx.body = present(await agents.get(ctx.state.actor.orgId, ctx.params.agentId));
  });

  router.patch('/agents/:agentId', requireScope('agents:write'), validateBody('UpdateAgentRequest'), settled, async (ctx: Context) => {
    const { agent, fields, statusChange } = await agents.update(ctx.state.actor, ctx.params.agentId, ctx.state.input);
    const target = { type: 'agent', id: agent.id };
    if (fields.length) await auditWriter.write(managementEvent(ctx, 'agent.updated', target, { fields }));
    if (statusChange) await auditWriter.write(managementEvent(ctx, statusChange === 'suspended' ? 'agent.suspended' : 'agent.reactivated', target));
    ctx.body = present(agent);
  });

  router.delete('/agents/:agentId', requireScope('agents:write'), settled, async (ctx: Context) => {
    const revoked = await agents.decommission(ctx.state.actor, ctx.params.agentId);
    await auditWriter.write(managementEvent(ctx, 'agent.decommissioned', { type: 'agent', id: ctx.params.agentId }, { revokedCredentials: revoked }));
    ctx.status = 204;
  });
}
