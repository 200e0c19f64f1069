import type { Org } from './org.entity.ts';

export function presentOrg(org: Org) {
  return { orgId: org.id, name: org.name, limits: org.limits, createdAt: org.createdAt.toISOString() };
}
