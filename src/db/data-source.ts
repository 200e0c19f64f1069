import { DataSource, type EntitySchema } from 'typeorm';
import { migrations } from '../../migrations/index.ts';

/**
 * A data source on `url`. `entities` are the domains' TypeORM schemas, handed in by the
 * composition root (app/entities.ts): db/ knows no domain. Plain SQL and migrations need none.
 */
export function createDataSource(url: string, poolSize: number, entities: EntitySchema<any>[] = []): DataSource {
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
