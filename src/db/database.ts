import type { DataSource, EntitySchema } from 'typeorm';
import type { Config } from '../../config/index.ts';
import { createDataSource, migrate } from './data-source.ts';
import { startEmbeddedPostgres } from './embedded.ts';

export interface Database {
  dataSource: DataSource;
  /** The connection string the pool uses (for the LISTEN connection). */
  url: string;
  /** True when this process runs PGlite itself (no DATABASE_URL). */
  embedded: boolean;
  /**
   * True on a PostgreSQL server, where other sessions hear a NOTIFY. PGlite (embedded, or served
   * to us by someone else) is one session shared by every connection: there, no LISTEN.
   */
  listenable: boolean;
  poolSize: number;
  close(): Promise<void>;
}

/**
 * Runs `work` while holding a database-wide advisory lock, so that instances starting together
 * on a new database migrate and bootstrap one after the other. The embedded database serves
 * one process over one connection (which the lock would hold): no lock there.
 */
export async function underStartupLock<T>(database: Database, work: () => Promise<T>): Promise<T> {
  // The lock holds a connection of its own while `work` uses others: it needs a pool of two.
  if (database.embedded || database.poolSize < 2) return work();
  const runner = database.dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query(`SELECT pg_advisory_lock(hashtext('agent-idp:startup'))`);
    return await work();
  } finally {
    await runner.query(`SELECT pg_advisory_unlock(hashtext('agent-idp:startup'))`).catch(() => {});
    await runner.release();
  }
}

/** Connects to DATABASE_URL, or starts the embedded PGlite in DATA_DIR; then migrates (under the startup lock). */
export async function openDatabase(config: Config, entities: EntitySchema<any>[] = []): Promise<Database> {
  const embedded = config.databaseUrl === undefined ? await startEmbeddedPostgres(config.dataDir) : undefined;
  const url = embedded?.url ?? config.databaseUrl!;
  const poolSize = embedded ? 1 : config.databasePoolSize;
  const dataSource = createDataSource(url, poolSize, entities);
  try {
    await dataSource.initialize();
  } catch (err) {
    if (dataSource.isInitialized) await dataSource.destroy();
    await embedded?.stop();
    throw err;
  }
  let listenable = embedded === undefined;
  if (listenable) {
    const [{ version }]: { version: string }[] = await dataSource.query('SELECT version()').catch(async (err) => {
      await dataSource.destroy();
      throw err;
    });
    listenable = !/PGlite/i.test(version);
  }
  const database: Database = {
    dataSource,
    url,
    embedded: embedded !== undefined,
    listenable,
    poolSize,
    async close() {
      await dataSource.destroy();
      await embedded?.stop();
    },
  };
  try {
    await underStartupLock(database, () => migrate(dataSource));
  } catch (err) {
    await database.close();
    throw err;
  }
  return database;
}
