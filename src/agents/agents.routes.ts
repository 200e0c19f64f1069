import type Router from '@koa/router';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { managementEvent } from '../audit/events.ts';
import type { SettleStep } from '../coherence/settled.ts';
import type { ManagementState } from '../http/state.ts';
import { body, query, validate } from '../http/validate.ts';
import { requireScope } from '../policies/scopes.ts';
import type { AgentsService } from './agents.service.ts';
import { presentAgent } from './agents.presenter.ts';

const CreateAgent = body('CreateAgentRequest');
const UpdateAgent = body('UpdateAgentRequest');
const AgentList = query('AgentListQuery');

export interface AgentsRoutesDeps {
  agents: AgentsService;
  auditWriter: Pick<AuditWriter, 'write'>;
  settled: SettleStep;
  /** Shown as accessTokenTtlSeconds of an agent that has none of its own. */
  defaultTtlSeconds: number;
}

export function agentsRoutes(router: Router<ManagementState>, { agents, auditWriter, settled, defaultTtlSeconds }: AgentsRoutesDeps): void {
  const present = (agent: Parameters<typeof presentAgent>[0]) => presentAgent(agent, defaultTtlSeconds);

  router.post('/agents', requireScope('agents:write'), validate(CreateAgent), settled, async (ctx) => {
    const agent = await agents.create(ctx.state.actor, CreateAgent.of(ctx));
    await auditWriter.write(
      managementEvent(ctx, 'agent.created', { type: 'agent', id: agent.id }, { name: agent.name, scopes: agent.scopes, audiences: agent.audiences }),
    );
    ctx.status = 201;
    ctx.set('Location', `/api/v1/agents/${agent.id}`);
    ctx.body = present(agent);
  });

  router.get('/agents', requireScope('agents:read'), validate(AgentList), async (ctx) => {
    const { page, limit, status } = AgentList.of(ctx);
    const { rows, total } = await agents.list(ctx.state.actor.orgId, { status }, { page, limit });
    ctx.body = { data: rows.map(present), total, page, limit };
  });

  router.get('/agents/:agentId', requireScope('agents:read'), async (ctx) => {
    ctx.body = present(await agents.get(ctx.state.actor.orgId, ctx.params.agentId));
  });

  router.patch('/agents/:agentId', requireScope('agents:write'), validate(UpdateAgent), settled, async (ctx) => {
    const { agent, fields, statusChange } = await agents.update(ctx.state.actor, ctx.params.agentId, UpdateAgent.of(ctx));
    const target = { type: 'agent', id: agent.id };
    if (fields.length) await auditWriter.write(managementEvent(ctx, 'agent.updated', target, { fields }));
    if (statusChange) await auditWriter.write(managementEvent(ctx, statusChange === 'suspended' ? 'agent.suspended' : 'agent.reactivated', target));
    ctx.body = present(agent);
  });

  router.delete('/agents/:agentId', requireScope('agents:write'), settled, async (ctx) => {
    const revoked = await agents.decommission(ctx.state.actor, ctx.params.agentId);
    await auditWriter.write(managementEvent(ctx, 'agent.decommissioned', { type: 'agent', id: ctx.params.agentId }, { revokedCredentials: revoked }));
    ctx.status = 204;
  });
}
