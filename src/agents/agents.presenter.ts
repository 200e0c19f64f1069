import type { AgentView } from './agent.entity.ts';

/** The agent as the API shows it; accessTokenTtlSeconds is the effective lifetime. */
export function presentAgent(agent: AgentView, defaultTtlSeconds: number) {
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
    federatedIdentities: agent.federatedIdentities.map(({ issuer, subject, audience }) => ({ issuer, subject, audience })),
    createdAt: agent.createdAt.toISOString(),
    updatedAt: agent.updatedAt.toISOString(),
  };
}
