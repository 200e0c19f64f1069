import { EntitySchema } from 'typeorm';

export interface Org {
  id: string;
  name: string;
  isRoot: boolean;
  createdAt: Date;
}

export const OrgEntity = new EntitySchema<Org>({
  name: 'Org',
  tableName: 'orgs',
  columns: {
    id: { type: 'uuid', primary: true },
    name: { type: 'text' },
    isRoot: { type: 'boolean', name: 'is_root', default: false },
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
  },
});
