import type { Actor } from './actor.ts';

/** What the middleware of the management API leaves on ctx.state for the handlers (routes use Router<ManagementState>). */
export interface ManagementState {
  /** X-Request-Id (request-context.ts). */
  requestId: string;
  /** The agent whose bearer token opened the API (bearer.ts). */
  actor: Actor;
  /** The parsed JSON body (body.ts); read it through a validated input (validate.ts). */
  body?: unknown;
  /** Set to false by a writing handler that changed nothing: the settle step then has nothing to wait for. */
  changed?: boolean;
}
