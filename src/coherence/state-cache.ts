import type { ClientAgent } from '../agents/agent.entity.ts';
import type { CredentialKey, CredentialSecrets } from '../credentials/credential.entity.ts';
import type { Coherence, StateKind } from './coherence.ts';
import { Lru } from '../lib/lru.ts';
import { FederationMap } from './federation-map.ts';

/** One kind of state in memory: answers only while the instance's lease holds (see Coherence). */
export class CoherentMap<V> {
  readonly #coherence: Coherence;
  readonly #entries: Lru<string, V>;

  constructor(coherence: Coherence, kind: StateKind, maxEntries: number) {
    this.#coherence = coherence;
    this.#entries = new Lru(maxEntries);
    coherence.onChange(kind, (id) => this.#entries.delete(id));
    coherence.onReset(() => this.#entries.clear());
  }

  /** The value, or undefined when not cached or when the cache may not answer now. */
  get(key: string): V | undefined {
    if (!this.#coherence.usable()) return undefined;
    return this.#entries.get(key);
  }

  /**
   * Keeps a value read from the database, unless a change was heard since `ticket` (the
   * generation before the read began): then the read may predate that change.
   */
  set(key: string, value: V, ticket: number): void {
    if (ticket !== this.#coherence.generation || !this.#coherence.usable()) return;
    this.#entries.set(key, value);
  }

  /** Forgets everything (a change that touches many entries at once). */
  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}

/**
 * What client authentication and token checks read on every request, kept in memory:
 * active agents, credential rows, whether a jti is revoked, whether a key may still vouch for
 * its tokens. Only positive facts about agents and credentials are kept (an unknown id is read
 * each time, so that a flood of made-up ids cannot push real entries out).
 */
export class StateCache {
  readonly coherence: Coherence;
  readonly agents: CoherentMap<ClientAgent>;
  readonly credentials: CoherentMap<CredentialSecrets>;
  /** agent id → its key credentials (private_key_jwt), whatever their state. */
  readonly agentKeys: CoherentMap<CredentialKey[]>;
  /** jti → revoked. */
  readonly jtis: CoherentMap<boolean>;
  /** kid → may verify tokens (next, active or retired). */
  readonly keys: CoherentMap<boolean>;
  /** jwt-bearer: external (issuer, subject) → the agent it maps to, or why none. */
  readonly federation: FederationMap;

  constructor(coherence: Coherence, maxEntries = 50_000) {
    this.coherence = coherence;
    this.agents = new CoherentMap(coherence, 'agent', maxEntries);
    this.credentials = new CoherentMap(coherence, 'credential', maxEntries);
    this.agentKeys = new CoherentMap(coherence, 'agentkeys', maxEntries);
    this.jtis = new CoherentMap(coherence, 'jti', maxEntries * 2);
    this.keys = new CoherentMap(coherence, 'key', 1_000);
    this.federation = new FederationMap(coherence, maxEntries);
    // Each cached agent carries its org's limits (the default token quota): a change of them, rare, forgets them all.
    coherence.onChange('org', () => this.agents.clear());
  }

  /** Take before reading the database; hand to set() with what was read. */
  ticket(): number {
    return this.coherence.generation;
  }
}
