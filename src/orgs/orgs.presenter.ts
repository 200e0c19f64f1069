import type { Org } from './org.entity.ts';

export function presentOrg(org: Org) {
  return { orgId: org.id, name: org.name, createdAt: org.createdAt.toISOString() };
}
