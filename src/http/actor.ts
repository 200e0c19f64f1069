/** Who is calling the management API: the agent whose bearer token was presented. */
export interface Actor {
  agentId: string;
  orgId: string;
  /** Operators of the whole service are agents of the root org. */
  isRoot: boolean;
  scopes: Set<string>;
  jti: string;
}
