import { EntitySchema } from 'typeorm';

/** What an org may hold and use; an absent key is no limit. */
export interface OrgLimits {
  maxAgents?: number;
  maxActiveCredentialsPerAgent?: number;
  /** The default per-minute token quota of the org's agents that set none of their own. */
  tokensPerMinutePerAgent?: number;
}

export interface Org {
  id: string;
  name: string;
  isRoot: boolean;
  limits: OrgLimits;
  createdAt: Date;
}

export const OrgEntity = new EntitySchema<Org>({
  name: 'Org',
  tableName: 'orgs',
  columns: {
    id: { type: 'uuid', primary: true },
    name: { type: 'text' },
    isRoot: { type: 'boolean', name: 'is_root', default: false },
    limits: { type: 'jsonb', default: {} },
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
  },
});
