import { Provider, type Adapter, type AdapterPayload } from 'oidc-provider';
import { clientAuthNotes, presentedSecret } from './client-auth/note.ts';
import { credentialIdOf } from '../credentials/secrets.ts';
import type { ClientStore } from './client-store.ts';
import { clientMetadataOf } from './clients.ts';
import { isUuid } from '../lib/ids.ts';
import type { AuthThrottle } from '../throttling/auth-throttle.ts';
import { TooManyRequests, throttledDescription } from './hooks/auth-throttle.ts';

// oidc-provider's storage contract, for the one model agent-idp lets it use: Client, read from
// the agents table. Access tokens are JWTs (never stored by the provider); introspection and
// revocation are our own routes; no interactive flow is enabled, so no other model is ever
// written. Should a future configuration reach one, it fails loudly instead of silently
// keeping state in memory.

export function adapterFactory(clients: Pick<ClientStore, 'findActiveWithCredential'>, throttle: Pick<AuthThrottle, 'refusedPair'>) {
  return class AgentIdpAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model !== 'Client') return undefined;
      // Only an active agent loads: suspended and decommissioned agents cannot authenticate.
      if (!isUuid(id)) return undefined;
      const ctx = Provider.ctx;
      const note = clientAuthNotes.getStore();
      // A client id refused from this address is refused before its agent is read (no database read, no bcrypt).
      const wait = ctx && throttle.refusedPair(id, ctx.ip, 'token');
      if (wait) {
        ctx.set('Retry-After', String(wait));
        if (note) note.refused = true;
        throw new TooManyRequests(throttledDescription(wait));
      }
      if (note) note.lookedUp = id;
      // The credential the presented secret names comes in the same query, for the secret check.
      const secret = presentedSecret(ctx);
      const credentialId = secret === undefined ? undefined : credentialIdOf(secret);
      const found = await clients.findActiveWithCredential(id, credentialId);
      if (note && found) note.prefetched = { agentId: id, credentialId, credential: found.credential };
      return found ? (clientMetadataOf(found.agent) as unknown as AdapterPayload) : undefined;
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
