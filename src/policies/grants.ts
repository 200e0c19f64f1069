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

/** The audiences an agent's tokens may carry: those it was registered with, else the service's default. */
export function allowedAudiences(registered: string[], defaultAudience: string): string[] {
  return registered.length > 0 ? registered : [defaultAudience];
}

/** The first requested scope the agent was not registered with, if any (RFC 6749 §3.3). */
export function unregisteredScope(requested: string, registered: string[]): string | undefined {
  return requested.split(' ').find((scope) => !registered.includes(scope));
}
