import type { Actor } from '../http/actor.ts';
import { INTROSPECT_SCOPE } from './scopes.ts';

// Who may see what.

/**
 * RFC 7662 §2.2 leaves it to the server who may learn about a token: its own client, or a
 * resource server of the same org that holds tokens:introspect. Anyone else learns only
 * `active: false`.
 */
export function mayIntrospect(caller: { id: string; orgId: string; scopes: string[] }, token: { client_id: string; org_id: string }): boolean {
  return token.client_id === caller.id || (caller.orgId === token.org_id && caller.scopes.includes(INTROSPECT_SCOPE));
}

/**
 * Whose audit events a reader sees: its own org's; the operators of the service (the root org)
 * also those of no org (the scheduler's key rotations and retention runs, /token calls by
 * clients that name no agent).
 */
export function auditVisibility(reader: Pick<Actor, 'orgId' | 'isRoot'>): { orgId: string; includeUnowned: boolean } {
  return { orgId: reader.orgId, includeUnowned: reader.isRoot };
}
