import type { Agent } from './agent.entity.ts';

/** The agent as the API shows it; accessTokenTtlSeconds is the effective lifetime. */
export function presentAgent(agent: Agent, defaultTtlSeconds: number) {
  return {
    agentId: agent.id,
    clientId: agent.id,
    orgId: agent.orgId,
    name: agent.name,
    description: agent.description,
    owner: agent.owner,
    status: agent.status,
    scopes: agent.scopes,
    audiences: agent.audiences,
    metadata: agent.metadata,
    accessTokenTtlSeconds: agent.accessTokenTtlSeconds ?? defaultTtlSeconds,
    tokenQuota: agent.tokenQuota ?? null,
    requireDpop: agent.requireDpop,
    mayAct: agent.mayAct,
    createdAt: agent.createdAt.toISOString(),
    updatedAt: agent.updatedAt.toISOString(),
  };
}
