import type { DataSource } from 'typeorm';
import type { Config } from '../../config/index.ts';
import { createDataSource, migrate } from './data-source.ts';
import { startEmbeddedPostgres } from './embedded.ts';

export interface Database {
  dataSource: DataSource;
  /** The connection string the pool uses (for the LISTEN connection). */
  url: string;
  /** True when this process runs PGlite itself (no DATABASE_URL). */
  embedded: boolean;
  close(): Promise<void>;
}

/** Connects to DATABASE_URL, or starts the embedded PGlite in DATA_DIR; then migrates. */
export async function openDatabase(config: Config): Promise<Database> {
  const embedded = config.databaseUrl === undefined ? await startEmbeddedPostgres(config.dataDir) : undefined;
  const url = embedded?.url ?? config.databaseUrl!;
  const dataSource = createDataSource(url, embedded ? 1 : config.databasePoolSize);
  try {
    await dataSource.initialize();
    await migrate(dataSource);
  } catch (err) {
    if (dataSource.isInitialized) await dataSource.destroy();
    await embedded?.stop();
    throw err;
  }
  return {
    dataSource,
    url,
    embedded: embedded !== undefined,
    async close() {
      await dataSource.destroy();
      await embedded?.stop();
    },
  };
}
