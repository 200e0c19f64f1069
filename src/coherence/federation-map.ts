import type { ClientAgent, FederatedIdentity } from '../agents/agent.entity.ts';
import type { Coherence } from './coherence.ts';
import { Lru } from '../lib/lru.ts';

/** What an external (issuer, subject) maps to (jwt-bearer, RFC 7523 §2.1): the agent, in any state, and the mapping's audience. */
export interface FederatedMapping {
  agent: ClientAgent;
  identity: FederatedIdentity;
}

/** Why an (issuer, subject) maps to no agent: no agent federates with the issuer at all, or none with this subject of it. */
export type FederationMiss = 'unknown_issuer' | 'unknown_subject';

/**
 * The lookups of the jwt-bearer grant, (issuer, subject) → agent, in memory under the rules of
 * CoherentMap (answers only while the lease holds; a read is kept only if no change was heard
 * during it). A change of a mapping is announced as `agent:<agent id>` (its trigger,
 * migrations/1763769601500), as is any change of the agent itself, so the mappings are indexed
 * by agent as well: that notification drops every mapping that names the agent. An org's change
 * drops them all (the agent carries its org's limits, as in StateCache.agents).
 *
 * Misses are kept too, apart (so that a flood of made-up subjects cannot push real mappings
 * out), and every `agent:` notification drops them all: a new mapping is announced under the id
 * of an agent no miss knows of, and mappings change rarely, so a created mapping is never
 * refused once its creation has been answered (the writer settles first).
 * An UPDATE that moves a row to another agent (an operator's SQL) announces both agents
 * (migrations/1763769601600).
 */
export class FederationMap {
  readonly #coherence: Coherence;
  readonly #max: number;
  readonly #found: Lru<string, FederatedMapping>;
  /** agent id → the keys of #found that map to it. */
  readonly #byAgent = new Map<string, Set<string>>();
  readonly #missing: Lru<string, FederationMiss>;

  constructor(coherence: Coherence, maxEntries: number) {
    this.#coherence = coherence;
    this.#max = maxEntries;
    this.#found = new Lru(maxEntries);
    this.#missing = new Lru(maxEntries);
    coherence.onChange('agent', (agentId) => {
      this.#dropAgent(agentId);
      this.#missing.clear();
    });
    coherence.onChange('org', () => this.#clearFound());
    coherence.onReset(() => {
      this.#clearFound();
      this.#missing.clear();
    });
  }

  /** The mapping or the miss, or undefined when not cached or when the cache may not answer now. */
  get(issuer: string, subject: string): FederatedMapping | FederationMiss | undefined {
    if (!this.#coherence.usable()) return undefined;
    const key = keyOf(issuer, subject);
    return this.#found.get(key) ?? this.#missing.get(key);
  }

  /** Keeps what was read, unless a change was heard since `ticket` (the generation before the read began). */
  set(issuer: string, subject: string, value: FederatedMapping | FederationMiss, ticket: number): void {
    if (ticket !== this.#coherence.generation || !this.#coherence.usable()) return;
    const key = keyOf(issuer, subject);
    this.#forget(key);
    if (typeof value === 'string') {
      this.#missing.set(key, value);
      return;
    }
    if (this.#found.size >= this.#max) {
      // The Lru is about to push out its oldest entry: its index entry goes with it.
      const oldest = this.#found.entries().next().value;
      if (oldest) this.#forget(oldest[0]);
    }
    this.#found.set(key, value);
    const keys = this.#byAgent.get(value.agent.id);
    if (keys) keys.add(key);
    else this.#byAgent.set(value.agent.id, new Set([key]));
  }

  get size(): { found: number; missing: number; agents: number } {
    return { found: this.#found.size, missing: this.#missing.size, agents: this.#byAgent.size };
  }

  #forget(key: string): void {
    this.#missing.delete(key);
    const had = this.#found.get(key);
    if (!had) return;
    this.#found.delete(key);
    const keys = this.#byAgent.get(had.agent.id);
    keys?.delete(key);
    if (keys?.size === 0) this.#byAgent.delete(had.agent.id);
  }

  #dropAgent(agentId: string): void {
    const keys = this.#byAgent.get(agentId);
    if (!keys) return;
    this.#byAgent.delete(agentId);
    for (const key of keys) this.#found.delete(key);
  }

  #clearFound(): void {
    this.#found.clear();
    this.#byAgent.clear();
  }
}

/** Unambiguous whatever the two strings hold (an assertion's iss is the caller's to choose). */
function keyOf(issuer: string, subject: string): string {
  return JSON.stringify([issuer, subject]);
}
