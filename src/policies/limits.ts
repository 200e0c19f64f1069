import { LimitReached } from '../http/errors.ts';
import type { OrgLimits } from '../orgs/org.entity.ts';

// What an org may hold (OrgLimits): a count limit is checked where the count and the insert
// happen in one transaction, under a row lock (see AgentsService.create, CredentialsService.create).

/** The count limits, with what each one counts (for the 409's detail). */
const COUNTED: Record<'maxAgents' | 'maxActiveCredentialsPerAgent', string> = {
  maxAgents: 'agents that are not decommissioned in the org',
  maxActiveCredentialsPerAgent: 'active, unexpired credentials of the agent',
};

/** Throws 409 limit_reached when one more object would exceed the org's limit; an absent limit is none. */
export function assertBelowLimit(limits: OrgLimits, limit: keyof typeof COUNTED, current: number): void {
  const max = limits[limit];
  if (max === undefined || current < max) return;
  throw new LimitReached(limit, `the org's limit ${limit} (${max}) is reached: there are ${current} ${COUNTED[limit]}`);
}
