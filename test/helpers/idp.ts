import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { loadConfig, type Config } from '../../config/index.ts';
import { createLogger } from '../../src/lib/logger.ts';
import { createIdp, type Idp } from '../../src/app/idp.ts';
import { generateSecret } from '../../src/credentials/secrets.ts';
import { assertNoSecretsInLogs, freshDatabase, type TestDatabase } from './database.ts';

// One real app per test file, over real HTTP, on a database of its own.

export interface TestIdp {
  url: string;
  idp: Idp;
  config: Config;
  db: TestDatabase;
  operator: { clientId: string; clientSecret: string };
  /** Log lines the app wrote (JSON), to prove what never reaches a log. */
  logs: string[];
  /**
   * Changes rows behind the service's back (to drive a clock: an expiry passes), then waits
   * until every instance has heard of it, as the service's own writers do (Coherence.settle):
   * without the wait, the next request may still be answered from memory.
   */
  changeBySql(sql: string, params?: unknown[]): Promise<void>;
  close(): Promise<void>;
}

export interface TestIdpOptions {
  env?: Record<string, string>;
  /** Use this database (restart tests); the caller drops it. */
  db?: TestDatabase;
  /**
   * Another instance on the same database, as a second replica would run. On PostgreSQL it
   * gets its own connection pool; on the single-connection embedded database it shares the
   * first instance's connection.
   */
  replicaOf?: TestIdp;
  /** The wall clock of rate limits, quotas and counters (ms), for tests that drive time. */
  clock?: () => number;
}

export async function startTestIdp(options: TestIdpOptions = {}): Promise<TestIdp> {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const primary = options.replicaOf;
  const db = primary?.db ?? options.db ?? (await freshDatabase());
  const ownsDb = !primary && !options.db;
  const operator = primary?.operator ?? { clientId: randomUUID(), clientSecret: generateSecret(randomUUID()) };
  const config = loadConfig({
    // Replicas share one issuer, as behind a load balancer.
    PUBLIC_URL: primary?.config.publicUrl ?? url,
    DATABASE_URL: db.url,
    DATABASE_POOL_SIZE: db.embedded ? '1' : '5',
    KEY_ENCRYPTION_KEY: primary ? primary.config.keyEncryptionKey!.toString('base64') : randomBytes(32).toString('base64'),
    BCRYPT_COST: '4',
    BOOTSTRAP_ADMIN_CLIENT_ID: operator.clientId,
    BOOTSTRAP_ADMIN_CLIENT_SECRET: operator.clientSecret,
    LOG_LEVEL: 'debug',
    ...options.env,
  });
  const logs: string[] = [];
  let idp: Idp;
  try {
    const shared = { ...(primary && db.embedded ? { database: primary.idp.database } : {}), clock: options.clock };
    idp = await createIdp(
      config,
      createLogger('debug', (line) => logs.push(line)),
      shared,
    );
  } catch (err) {
    server.close();
    if (ownsDb) await db.drop();
    throw err;
  }
  handler = idp.handler;

  return {
    url,
    idp,
    config,
    db,
    operator,
    logs,
    async changeBySql(sql, params = []) {
      await idp.database.dataSource.query(sql, params);
      await idp.coherence.settle();
    },
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
      await idp.close();
      if (ownsDb) await db.drop();
      // Every app of the suite passes through here: what it logged is scanned like the audit log.
      assertNoSecretsInLogs(logs);
    },
  };
}
