import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type { Config } from '../../config/index.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { openDatabase, underStartupLock, type Database } from '../db/database.ts';
import { resolveMasterKey } from '../keys/master-key.ts';
import { KeysService } from '../keys/keys.service.ts';
import { KeysRepository } from '../keys/keys.repository.ts';
import { KeyRing } from '../keys/key-ring.ts';
import { KeyRotationScheduler } from '../keys/key-rotation.scheduler.ts';
import { AgentsService } from '../agents/agents.service.ts';
import { CredentialsService } from '../credentials/credentials.service.ts';
import { OrgsService } from '../orgs/orgs.service.ts';
import { buildProvider } from '../oauth/provider.ts';
import { MANAGEMENT_AUDIENCE_PATH } from '../oauth/paths.ts';
import { ClientStore } from '../oauth/client-store.ts';
import { ProviderHost } from '../oauth/provider-host.ts';
import { AccessTokenVerifier } from '../oauth/verifier.ts';
import { createApp } from './app.ts';
import { RevocationsRepository } from '../oauth/revocations.repository.ts';
import { RevocationPurge } from '../oauth/revocation-purge.ts';
import { AuditWriter } from '../audit/audit.writer.ts';
import { AuditService } from '../audit/audit.service.ts';
import { AuditMaintenance } from '../audit/retention.ts';
import { schedulerEvent } from '../audit/events.ts';
import { bootstrap, type BootstrapResult } from './bootstrap.ts';
import { Coherence } from '../coherence/coherence.ts';
import { NotifyConnection } from '../db/notify.ts';
import { StateCache } from '../coherence/state-cache.ts';

export interface Idp {
  app: Koa;
  config: Config;
  database: Database;
  bootstrap: BootstrapResult;
  providerHost: ProviderHost;
  keys: KeysService;
  keyRing: KeyRing;
  scheduler: KeyRotationScheduler;
  auditWriter: AuditWriter;
  auditMaintenance: AuditMaintenance;
  coherence: Coherence;
  /** Starts listening (port 0 picks a free one) and returns the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Stops taking requests, lets those in flight finish, closes the database. */
  close(): Promise<void>;
}

/** Builds the whole service on its database: migrated, bootstrapped, keys loaded. */
export async function createIdp(config: Config, logger: Logger = createLogger(config.logLevel), options: { database?: Database } = {}): Promise<Idp> {
  const masterKey = resolveMasterKey(config);
  // A database handle may be shared by several instances in one process (tests of instances
  // that share a database, on the single-connection embedded one); its owner closes it.
  const database = options.database ?? (await openDatabase(config));
  const closeDatabase = options.database ? async () => {} : () => database.close();
  let notify: NotifyConnection | undefined;
  let coherence: Coherence | undefined;
  try {
    const ds = database.dataSource;
    // One LISTEN connection for everything that hears the other instances; none on PGlite (one
    // session: nothing to LISTEN with), where the key ring polls and nothing is cached.
    notify = new NotifyConnection(database.listenable ? database.url : undefined, logger);
    const listener = notify;
    const ring = new KeyRing(new KeysRepository(ds), masterKey, notify, logger);
    // What every /token and introspection reads, kept in memory and in step with the other instances.
    const states = new Coherence(ds, notify, logger);
    coherence = states;
    const keys = new KeysService(ds, masterKey, config, logger, ring);
    const credentials = new CredentialsService(ds, config);
    // Several instances may start at once on a new database: one at a time creates what is missing.
    const boot = await underStartupLock(database, async () => {
      await keys.ensureKeys();
      return bootstrap(ds, config, credentials, database.embedded, logger);
    });
    await ring.reload();
    const keyset = ring.current;

    const auditWriter = new AuditWriter(ds, logger);
    const audit = new AuditService(ds, { retentionDays: config.auditRetentionDays });
    const maintenance = new AuditMaintenance(ds, auditWriter, logger, { retentionDays: config.auditRetentionDays });
    // Listening, with a lease; then changes made before this instance listened (bootstrap) are
    // taken in by every other one.
    await listener.start();
    await states.settle();
    const stateCache = states.enabled ? new StateCache(states) : undefined;
    const clients = new ClientStore(ds, stateCache);
    const agents = new AgentsService(ds, credentials);
    const orgs = new OrgsService(ds, credentials, config.publicUrl + MANAGEMENT_AUDIENCE_PATH);

    const providerHost = new ProviderHost(buildProvider({ config, keyset, clients, credentials, logger, auditWriter }));
    const revocations = new RevocationsRepository(ds);
    const verifier = new AccessTokenVerifier(config.publicUrl, keyset, clients);
    const purge = new RevocationPurge(revocations, logger);
    purge.start();
    // A new key set: a new Provider swapped in (oidc-provider fixes its keys at construction).
    ring.onChange((next) => {
      providerHost.swap(buildProvider({ config, keyset: next, clients, credentials, logger, auditWriter }));
      verifier.useKeyset(next);
      logger.info('signing keys changed', { active: next.activeKid, published: next.privateJwks.length });
    });
    ring.start();
    const scheduler = new KeyRotationScheduler(keys, logger, {
      async onResult(result) {
        if (!result.rotated && !result.removed.length && !result.createdNext) return;
        // The event belongs to no org (the operators of the root org see it).
        await auditWriter.write(
          schedulerEvent(
            'key-rotation',
            'key.rotated',
            { type: 'key', id: result.rotated?.active ?? null },
            {
              ...result.rotated,
              removed: result.removed,
              createdNext: result.createdNext ?? null,
            },
          ),
        );
      },
    });
    scheduler.start();
    maintenance.start();
    const app = createApp({
      services: { config, agents, credentials, orgs, clients, revocations, keys, auditWriter, audit },
      providerHost,
      verifier,
      rootOrgId: () => boot.rootOrg.id,
      logger,
      coherence: states,
    });

    let server: Server | undefined;
    // Requests still being handled: the database closes only once they are done, even when
    // their client has gone away (its connection closed, the handler still running).
    let inFlight = 0;
    let whenIdle: (() => void) | undefined;
    return {
      app,
      config,
      database,
      bootstrap: boot,
      providerHost,
      keys,
      keyRing: ring,
      scheduler,
      auditWriter,
      auditMaintenance: maintenance,
      coherence: states,
      listen(port = config.port, host = config.host) {
        const handle = app.callback();
        server = createServer((req, res) => {
          inFlight++;
          void (handle(req, res) as unknown as Promise<void>).finally(() => {
            if (--inFlight === 0) whenIdle?.();
          });
        });
        server.keepAliveTimeout = 65_000;
        return new Promise((resolve, reject) => {
          server!.once('error', reject);
          server!.listen(port, host, () => {
            const { port: bound } = server!.address() as AddressInfo;
            resolve(`http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`);
          });
        });
      },
      async close() {
        purge.stop();
        scheduler.stop();
        await maintenance.stop();
        ring.stop();
        if (server) {
          const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
          server.closeIdleConnections();
          const force = setTimeout(() => server!.closeAllConnections(), 10_000);
          await closed;
          clearTimeout(force);
          if (inFlight > 0) {
            await new Promise<void>((resolve) => {
              whenIdle = resolve;
              setTimeout(resolve, 10_000).unref();
            });
          }
        }
        // Every event of a request that was answered is committed already; this flushes the rest.
        await auditWriter.close();
        await states.stop();
        await listener.stop();
        await closeDatabase();
      },
    };
  } catch (err) {
    await coherence?.stop();
    await notify?.stop();
    await closeDatabase();
    throw err;
  }
}
