import { Provider, type Adapter, type AdapterPayload } from 'oidc-provider';
import { clientAuthNotes, presentedAssertion, presentedSecret } from './client-auth/note.ts';
import { headerKid, keysForAssertion } from './client-auth/private-key-jwt.ts';
import { REPLAY_WINDOW_SECONDS, type ReplaysRepository } from './replays.repository.ts';
import { credentialIdOf } from '../credentials/secrets.ts';
import type { ClientStore } from './client-store.ts';
import { clientMetadataOf, federatedClientMetadata } from './clients.ts';
import { isUuid } from '../lib/ids.ts';
import type { AuthThrottle } from '../throttling/auth-throttle.ts';
import { TooManyRequests, throttledDescription } from './hooks/auth-throttle.ts';

// oidc-provider's storage contract, for the two models agent-idp lets it use: Client, read from
// the agents table with the credential the request presents, and ReplayDetection (the jti of a
// client assertion or a DPoP proof, in replay_ids for every instance). Access tokens are JWTs
// (never stored by the provider); introspection and revocation are our own routes; no
// interactive flow is enabled, so no other model is ever written. Should a future
// configuration reach one, it fails loudly instead of silently keeping state in memory.

export function adapterFactory(
  clients: Pick<ClientStore, 'findActiveWithCredential' | 'findActiveWithKeys'>,
  throttle: Pick<AuthThrottle, 'refusedPair'>,
  replays: Pick<ReplaysRepository, 'claim'>,
) {
  return class AgentIdpAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'ReplayDetection') return this.#seen(id);
      if (this.model !== 'Client') return undefined;
      // jwt-bearer: the client the request was given after its assertion (hooks/federated-client.ts), for this request only.
      const federation = clientAuthNotes.getStore()?.federation;
      if (federation && id === federation.clientId) return federatedClientMetadata(federation) as unknown as AdapterPayload;
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
      const assertion = presentedAssertion(ctx);
      if (assertion !== undefined) {
        // private_key_jwt: the provider verifies the assertion with the keys this client metadata carries.
        const found = await clients.findActiveWithKeys(id);
        if (!found) return undefined;
        const keys = keysForAssertion(found.keys, headerKid(assertion));
        if (note) {
          note.assertionKeys = keys;
          if (keys.failure) note.reason = keys.failure;
        }
        return clientMetadataOf(found.agent, keys.jwks) as unknown as AdapterPayload;
      }
      // The credential the presented secret names comes in the same query, for the secret check.
      const secret = presentedSecret(ctx);
      const credentialId = secret === undefined ? undefined : credentialIdOf(secret);
      const found = await clients.findActiveWithCredential(id, credentialId);
      if (note && found) note.prefetched = { agentId: id, credentialId, credential: found.credential };
      return found ? (clientMetadataOf(found.agent) as unknown as AdapterPayload) : undefined;
    }

    /**
     * ReplayDetection.unique() finds, then saves: two instances could both find nothing. Here
     * find() is the claim itself (one INSERT that only one request can win), so a "not found"
     * has already recorded the id and upsert() has nothing left to do.
     */
    async #seen(id: string): Promise<AdapterPayload | undefined> {
      if (await replays.claim(id)) return undefined;
      const note = clientAuthNotes.getStore();
      if (note) note.reason = id === note.replayId ? 'assertion_replayed' : 'dpop_proof_replayed';
      const now = Math.floor(Date.now() / 1000);
      return { jti: id, kind: 'ReplayDetection', iat: now, exp: now + REPLAY_WINDOW_SECONDS };
    }

    async upsert(): Promise<void> {
      if (this.model === 'ReplayDetection') return;
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
