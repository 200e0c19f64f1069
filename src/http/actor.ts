/** Who is calling the management API: the agent whose bearer token was presented. */
export interface Actor {
  agentId: string;
  orgId: string;
  /** Operators of the whole service are agents of the root org. */
  isRoot: boolean;
  scopes: Set<string>;
  jti: string;
}

export const OPERATOR_SCOPES = ['keys:read', 'keys:write', 'orgs:read', 'orgs:write'];
export const ORG_ADMIN_SCOPES = ['agents:read', 'agents:write', 'audit:read'];
export const ALL_MANAGEMENT_SCOPES = [...ORG_ADMIN_SCOPES, ...OPERATOR_SCOPES];
