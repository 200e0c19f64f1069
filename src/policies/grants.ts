import { ValidationFailed } from '../http/errors.ts';
import type { Actor } from '../http/actor.ts';
import { ALL_MANAGEMENT_SCOPES, OPERATOR_SCOPES } from './scopes.ts';

// What an actor may hand out: scopes to an agent it registers, scopes and audiences to a token.

/**
 * Who may grant what: an org hands out any scope of its own APIs, but a scope of this service's
 * management API only by an agent that holds it itself (no one grants more than they have), and
 * the operators' scopes only inside the root org.
 */
export function assertGrantableScopes(scopes: string[] | undefined, actor: Pick<Actor, 'isRoot' | 'scopes'>): void {
  if (!scopes) return;
  const errors = scopes.flatMap((scope, i) => {
    if (OPERATOR_SCOPES.includes(scope) && !actor.isRoot) {
      return [{ field: `/scopes/${i}`, message: `${scope} is an operator scope that this org cannot grant` }];
    }
    if (ALL_MANAGEMENT_SCOPES.includes(scope) && !actor.scopes.has(scope)) {
      return [{ field: `/scopes/${i}`, message: `${scope} can be granted only by an agent that holds it` }];
    }
    return [];
  });
  if (errors.length) throw new ValidationFailed('scopes holds scopes that the caller cannot grant', errors);
}

/** Whether the agent holds a scope of this service's management API. */
export function holdsManagementScope(scopes: string[]): boolean {
  return scopes.some((scope) => ALL_MANAGEMENT_SCOPES.includes(scope));
}

/**
 * The audiences an agent's tokens may carry, the one a request without `resource` gets first:
 * its registered audiences in order, then the management audiences (`<issuer>/api/v1`, `<issuer>/mcp`)
 * when it holds a management scope; with neither, DEFAULT_AUDIENCE. The management audiences are
 * implied, never stored, so that they follow the issuer when PUBLIC_URL changes.
 */
export function allowedAudiences(agent: { scopes: string[]; audiences: string[] }, managementAudiences: string[], defaultAudience: string): string[] {
  const allowed = holdsManagementScope(agent.scopes) ? [...agent.audiences, ...managementAudiences] : agent.audiences;
  return allowed.length > 0 ? allowed : [defaultAudience];
}

/**
 * The management audiences are not registered: they are implied by the management scopes.
 * Storing one would pin today's issuer into the row, and as the first audience it would silently
 * decide the default of the agent's tokens; so it is refused with the rule rather than dropped.
 */
export function assertRegistrableAudiences(audiences: string[] | undefined, managementAudiences: string[]): void {
  if (!audiences) return;
  const errors = audiences.flatMap((audience, i) =>
    managementAudiences.includes(audience)
      ? [
          {
            field: `/audiences/${i}`,
            message: `${audience} is implied by the management scopes (agents:read, agents:write, audit:read, webhooks:*, keys:*, orgs:*) and is not registered`,
          },
        ]
      : [],
  );
  if (errors.length) throw new ValidationFailed('audiences holds the management API, which an agent gets through its management scopes', errors);
}

/** The first requested scope the agent was not registered with, if any (RFC 6749 §3.3). */
export function unregisteredScope(requested: string, registered: string[]): string | undefined {
  return requested.split(' ').find((scope) => !registered.includes(scope));
}
