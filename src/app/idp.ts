import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type { Config } from '../../config/index.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { openDatabase, underStartupLock, type Database } from '../db/database.ts';
import type { KeysService } from '../keys/keys.service.ts';
import type { KeyRing } from '../keys/key-ring.ts';
import type { KeyRotationScheduler } from '../keys/key-rotation.scheduler.ts';
import type { AuditWriter } from '../audit/audit.writer.ts';
import type { AuditMaintenance } from '../audit/retention.ts';
import type { Coherence } from '../coherence/coherence.ts';
import type { ProviderHost } from '../oauth/provider-host.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { startMetricsServer, type MetricsServer } from '../metrics/metrics-server.ts';
import { ReadinessCheck } from '../health/readiness.ts';
import { healthRouter } from '../health/health.routes.ts';
import { bootstrap, type BootstrapResult } from './bootstrap.ts';
import { buildContainer, buildOAuth, type Container, type ContainerOptions } from './container.ts';
import { describeRoutes, managementRouter, mcpEndpoint, oauthRouter, publicRouter, type RouteInfo } from './routes.ts';
import { createApp, createHandler } from './app.ts';
import { consoleRoutes } from '../console/console.routes.ts';
import { ENTITIES } from './entities.ts';

export interface Idp {
  app: Koa;
  /** The HTTP server's request listener: `app`, with the JWKS answered before it. */
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  config: Config;
  database: Database;
  bootstrap: BootstrapResult;
  container: Container;
  providerHost: ProviderHost;
  keys: KeysService;
  keyRing: KeyRing;
  scheduler: KeyRotationScheduler;
  auditWriter: AuditWriter;
  auditMaintenance: AuditMaintenance;
  coherence: Coherence;
  /** The Prometheus metrics of this instance (also container.metrics). */
  metrics: Metrics;
  /** What /readyz answers. */
  readiness: ReadinessCheck;
  /** Where GET /metrics answers, once listenMetrics() (or listen()) has started it; undefined with METRICS_PORT=off. */
  readonly metricsUrl: string | undefined;
  /** The management API's routes, as their chains declare them. */
  routes: RouteInfo[];
  /** Starts listening (port 0 picks a free one) and returns the base URL; starts the metrics listener too (METRICS_PORT). */
  listen(port?: number, host?: string): Promise<string>;
  /** Starts the metrics listener alone (tests; port 0 picks a free one); resolves with its URL, or undefined with METRICS_PORT=off. */
  listenMetrics(port?: number, host?: string): Promise<string | undefined>;
  /**
   * The drain: /readyz answers 503 at once; requests are still served for SHUTDOWN_DELAY_SECONDS
   * (so load balancers stop sending first); then it stops taking requests, lets those in flight
   * finish, flushes the audit writer and closes the database. A second call ends the wait early
   * and resolves with the first.
   */
  close(): Promise<void>;
}

/** Builds the whole service on its database: migrated, bootstrapped, keys loaded, in step with the other instances. */
export async function createIdp(
  config: Config,
  logger: Logger = createLogger(config.logLevel),
  options: { database?: Database } & ContainerOptions = {},
): Promise<Idp> {
  // A database handle may be shared by several instances in one process (tests of instances
  // that share a database, on the single-connection embedded one); its owner closes it.
  const database = options.database ?? (await openDatabase(config, ENTITIES));
  const closeDatabase = options.database ? async () => {} : () => database.close();
  let c: Container | undefined;
  try {
    c = buildContainer(config, logger, database, options);
    const { keys, credentials, repositories, keyRing, notify, coherence } = c;
    // Several instances may start at once on a new database: one at a time creates what is missing.
    const boot = await underStartupLock(database, async () => {
      await keys.ensureKeys();
      return bootstrap(repositories, config, credentials, database.embedded, logger);
    });
    await keyRing.reload();
    // Listening, with a lease; then changes made before this instance listened (bootstrap) are
    // taken in by every other one.
    await notify.start();
    await coherence.settle();

    const container = c;
    const { providerHost, verifier } = buildOAuth(c);
    const rootOrgId = () => boot.rootOrg.id;
    const management = managementRouter(c, verifier, rootOrgId);
    const readiness = new ReadinessCheck({ dataSource: database.dataSource, keyRing, auditWriter: c.auditWriter });
    const app = createApp(
      providerHost,
      {
        health: healthRouter(readiness),
        console: consoleRoutes(),
        oauth: oauthRouter(c, verifier),
        public: publicRouter(c),
        mcp: mcpEndpoint(c, verifier, rootOrgId),
        management,
      },
      logger,
      {
        metrics: c.metrics,
        trustProxy: config.trustProxy,
      },
    );

    const handler = createHandler(app, providerHost, logger, c.metrics);

    keyRing.start();
    c.revocationPurge.start();
    c.throttle.start();
    c.counter.start();
    c.scheduler.start();
    c.auditMaintenance.start();
    c.deliveries.start();
    c.credentialExpiry.start();
    c.checkpointer.start();

    let server: Server | undefined;
    let metricsServer: MetricsServer | undefined;
    let closing: Promise<void> | undefined;
    let endDelay: (() => void) | undefined;
    async function listenMetrics(port = config.metricsPort, host = config.metricsHost): Promise<string | undefined> {
      if (port === undefined || metricsServer) return metricsServer?.url;
      metricsServer = await startMetricsServer(container.metrics, port, host, logger);
      logger.info('metrics listening', { url: metricsServer.url });
      return metricsServer.url;
    }
    // Requests still being handled: the database closes only once they are done, even when
    // their client has gone away (its connection closed, the handler still running).
    let inFlight = 0;
    let whenIdle: (() => void) | undefined;
    return {
      app,
      handler,
      config,
      database,
      bootstrap: boot,
      container: c,
      providerHost,
      keys,
      keyRing,
      scheduler: c.scheduler,
      auditWriter: c.auditWriter,
      auditMaintenance: c.auditMaintenance,
      coherence,
      metrics: c.metrics,
      readiness,
      get metricsUrl() {
        return metricsServer?.url;
      },
      routes: describeRoutes(management),
      listenMetrics,
      async listen(port = config.port, host = config.host) {
        server = createServer((req, res) => {
          inFlight++;
          void handler(req, res).finally(() => {
            if (--inFlight === 0) whenIdle?.();
          });
        });
        server.keepAliveTimeout = 65_000;
        const url = await new Promise<string>((resolve, reject) => {
          server!.once('error', reject);
          server!.listen(port, host, () => {
            const { port: bound } = server!.address() as AddressInfo;
            resolve(`http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`);
          });
        });
        try {
          await listenMetrics();
        } catch (err) {
          await new Promise((resolve) => server!.close(resolve));
          throw err;
        }
        return url;
      },
      close() {
        if (closing) {
          endDelay?.();
          return closing;
        }
        readiness.drain();
        closing = drainAndClose();
        return closing;
      },
    };

    async function drainAndClose() {
      if (config.shutdownDelaySeconds > 0) {
        logger.info('draining: /readyz answers 503; still serving until the delay has passed', { seconds: config.shutdownDelaySeconds });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, config.shutdownDelaySeconds * 1000);
          endDelay = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      container.revocationPurge.stop();
      container.throttle.stop();
      container.scheduler.stop();
      await container.auditMaintenance.stop();
      await container.credentialExpiry.stop();
      await container.checkpointer.stop();
      keyRing.stop();
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
      await container.counter.stop();
      // Attempts in flight are recorded; what is pending stays in the outbox for the next start.
      await container.deliveries.stop();
      // Every event of a request that was answered is committed already; this flushes the rest.
      await container.auditWriter.close();
      await metricsServer?.close();
      await coherence.stop();
      await notify.stop();
      await closeDatabase();
    }
  } catch (err) {
    await c?.coherence.stop();
    await c?.notify.stop();
    await closeDatabase();
    throw err;
  }
}
