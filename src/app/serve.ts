import cluster from 'node:cluster';
import type { Config } from '../../config/index.ts';
import { ConfigError } from '../../config/index.ts';
import type { Logger } from '../lib/logger.ts';
import { KeyEncryptionError } from '../keys/key-encryption.ts';
import { answerMetricsRequests } from '../metrics/cluster-metrics.ts';
import { createIdp, type Idp } from './idp.ts';
import { onStopFromPrimary, tellPrimary } from './cluster-messages.ts';
import { listenFailure } from './listen-failure.ts';

// One instance on PORT, as `npm start` runs it (WORKERS=1), or as one worker of a cluster
// (WORKERS > 1, src/app/cluster.ts). A worker differs in four ways only: it binds no metrics
// port (the primary serves the cluster's, asking each worker for its registry); it tells the
// primary that it listens, or why it could not start, instead of writing to stderr (the primary
// writes one line for all of them); the primary's signals reach it as messages; and a signal
// sent to the worker itself starts its drain but never counts as the second signal, since a
// terminal's Ctrl-C or systemd's stop reaches every process of the group at once.

export async function serve(config: Config, logger: Logger): Promise<void> {
  const worker = cluster.isWorker;
  let idp: Idp | undefined;
  let listening = false;
  let stopping = false;
  let delayEnded = false;

  function shutdown(signal: string, endDelay: boolean) {
    if (!stopping) {
      stopping = true;
      logger.info('shutting down: draining requests', { signal });
      idp!.close().then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          logger.error('shutdown failed', { err });
          process.exit(1);
        },
      );
    }
    if (endDelay && !delayEnded) {
      delayEnded = true;
      // Stop waiting out SHUTDOWN_DELAY_SECONDS (requests in flight still finish).
      logger.info('second signal: closing without waiting for the shutdown delay', { signal });
      void idp!.close();
    }
  }

  if (worker) {
    onStopFromPrimary(({ signal, now }) => {
      // Not serving yet: nothing to drain. The database rolls back whatever the start had begun.
      if (!listening) process.exit(0);
      shutdown(signal, now);
    });
  }

  async function fail(message: string): Promise<never> {
    if (worker) await tellPrimary({ type: 'agent-idp:start-failed', message });
    else process.stderr.write(`agent-idp: ${message}\n`);
    process.exit(1);
  }

  try {
    idp = await createIdp(worker ? { ...config, metricsPort: undefined } : config, logger);
  } catch (err) {
    await fail(err instanceof KeyEncryptionError || err instanceof ConfigError ? err.message : `could not start: ${(err as Error).message}`);
  }

  if (idp!.bootstrap.generatedAdmin) {
    // Shown once, on the terminal only (never through the logger): this is the way in. Before
    // listening, so that a start that fails there (a port in use) does not lose it. (Embedded
    // database only: never in a cluster.)
    const { clientId, clientSecret } = idp!.bootstrap.generatedAdmin;
    process.stderr.write(
      [
        '',
        '  An operator agent was generated for this new embedded database. Its secret is shown once:',
        `    client_id:     ${clientId}`,
        `    client_secret: ${clientSecret}`,
        '  Get a management token:',
        `    curl -s -u '${clientId}:<client_secret>' -d grant_type=client_credentials \\`,
        `      -d resource=${config.publicUrl}/api/v1 ${config.publicUrl}/token`,
        '',
      ].join('\n') + '\n',
    );
  }

  let url: string;
  try {
    url = await idp!.listen();
  } catch (err) {
    // A misconfiguration, not a crash: one line, and the embedded database and DATA_DIR released.
    await idp!.close().catch(() => {});
    return fail(listenFailure(err as NodeJS.ErrnoException, config.port, config.host));
  }
  listening = true;
  logger.info('agent-idp listening', {
    url,
    issuer: config.publicUrl,
    database: config.databaseUrl ? 'postgresql' : `embedded (${config.dataDir})`,
  });
  if (worker) {
    answerMetricsRequests(idp!.metrics.registry);
    await tellPrimary({ type: 'agent-idp:listening', url });
  }
  // Alone, a second signal ends the shutdown delay; in a worker, only the primary's does.
  process.on('SIGTERM', () => shutdown('SIGTERM', !worker && stopping));
  process.on('SIGINT', () => shutdown('SIGINT', !worker && stopping));
}
