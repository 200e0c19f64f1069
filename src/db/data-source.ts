import { DataSource } from 'typeorm';
import { migrations } from '../../migrations/index.ts';
import { OrgEntity } from '../orgs/org.entity.ts';
import { AgentEntity } from '../agents/agent.entity.ts';
import { CredentialEntity } from '../credentials/credential.entity.ts';
import { SigningKeyEntity } from '../keys/signing-key.entity.ts';

export const entities = [OrgEntity, AgentEntity, CredentialEntity, SigningKeyEntity];

export function createDataSource(url: string, poolSize: number): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities,
    migrations,
    migrationsTableName: 'migrations',
    // The schema changes only through migrations/.
    synchronize: false,
    migrationsRun: false,
    logging: false,
    poolSize,
    extra: {
      max: poolSize,
      connectionTimeoutMillis: 5000,
      // Keep the pool usable after a database restart: broken clients are dropped, new ones made.
      idleTimeoutMillis: 30000,
      application_name: 'agent-idp',
    },
  });
}

/** Runs every pending migration, each in its own transaction. Returns the names it ran. */
export async function migrate(dataSource: DataSource): Promise<string[]> {
  const ran = await dataSource.runMigrations({ transaction: 'each' });
  return ran.map((m) => m.name);
}
