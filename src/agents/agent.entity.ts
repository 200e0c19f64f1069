import { EntitySchema } from 'typeorm';

/**
 * What client authentication and token checks need of an agent (kept in memory: src/coherence).
 * Its tokenQuota is the one in force: the agent's own, its per-minute bound else its org's
 * tokensPerMinutePerAgent.
 */
export type ClientAgent = Pick<Agent, 'id' | 'orgId' | 'status' | 'scopes' | 'audiences' | 'accessTokenTtlSeconds' | 'tokenQuota' | 'requireDpop' | 'mayAct'>;

export type AgentStatus = 'active' | 'suspended' | 'decommissioned';

/** How many tokens an agent may get at /token; an absent bound is no bound (the org's limits may set one). */
export interface TokenQuota {
  perMinute?: number;
  perHour?: number;
}

/**
 * An external identity whose JWTs (RFC 7523 §2.1) are exchanged for the agent's tokens: `sub`
 * = subject, from issuer; audience null means this IdP's issuer URL.
 */
export interface FederatedIdentity {
  issuer: string;
  subject: string;
  audience: string | null;
}

/** The agent as the API shows it: its row and its federated identities (a table of their own). */
export type AgentView = Agent & { federatedIdentities: FederatedIdentity[] };

export interface Agent {
  id: string;
  orgId: string;
  name: string;
  description: string | null;
  owner: string | null;
  status: AgentStatus;
  scopes: string[];
  audiences: string[];
  metadata: Record<string, unknown>;
  accessTokenTtlSeconds: number | null;
  tokenQuota: TokenQuota | null;
  /** Its tokens must be DPoP-bound (RFC 9449): /token without a DPoP proof is refused. */
  requireDpop: boolean;
  /** The agents (same org) that may act for this one: exchange its tokens for their own (RFC 8693). */
  mayAct: string[];
  createdAt: Date;
  updatedAt: Date;
  decommissionedAt: Date | null;
}

export const AgentEntity = new EntitySchema<Agent>({
  name: 'Agent',
  tableName: 'agents',
  columns: {
    id: { type: 'uuid', primary: true },
    orgId: { type: 'uuid', name: 'org_id' },
    name: { type: 'text' },
    description: { type: 'text', nullable: true },
    owner: { type: 'text', nullable: true },
    status: { type: 'text', default: 'active' },
    scopes: { type: 'text', array: true },
    audiences: { type: 'text', array: true },
    metadata: { type: 'jsonb' },
    accessTokenTtlSeconds: { type: 'integer', name: 'access_token_ttl_seconds', nullable: true },
    tokenQuota: { type: 'jsonb', name: 'token_quota', nullable: true },
    requireDpop: { type: 'boolean', name: 'require_dpop', default: false },
    mayAct: { type: 'uuid', name: 'may_act', array: true, default: () => "'{}'" },
    createdAt: { type: 'timestamptz', name: 'created_at' },
    updatedAt: { type: 'timestamptz', name: 'updated_at' },
    decommissionedAt: { type: 'timestamptz', name: 'decommissioned_at', nullable: true },
  },
});
