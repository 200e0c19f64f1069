import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { AgentsRepository } from '../agents/agents.repository.ts';
import { clientMetadataOf } from './clients.ts';

// oidc-provider's storage contract, for the one model agent-idp lets it use: Client, read from
// the agents table. Access tokens are JWTs (never stored by the provider); introspection and
// revocation are our own routes; no interactive flow is enabled, so no other model is ever
// written. Should a future configuration reach one, it fails loudly instead of silently
// keeping state in memory.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function adapterFactory(agents: AgentsRepository) {
  return class AgentIdpAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model !== 'Client') return undefined;
      // Only an active agent loads: suspended and decommissioned agents cannot authenticate.
      if (!UUID.test(id)) return undefined;
      const agent = await agents.findActive(id);
      return agent ? (clientMetadataOf(agent) as unknown as AdapterPayload) : undefined;
    }

    async upsert(): Promise<void> {
      throw new Error(`agent-idp stores no ${this.model} through oidc-provider`);
    }

    async findByUserCode(): Promise<undefined> {
      return undefined;
    }

    async findByUid(): Promise<undefined> {
      return undefined;
    }

    async consume(): Promise<void> {
      throw new Error(`agent-idp stores no ${this.model} through oidc-provider`);
    }

    async destroy(): Promise<void> {
      throw new Error(`agent-idp stores no ${this.model} through oidc-provider`);
    }

    async revokeByGrantId(): Promise<void> {
      throw new Error(`agent-idp stores no ${this.model} through oidc-provider`);
    }
  };
}
