import { ConfigError, loadConfig } from '../config/index.ts';
import { createLogger } from './lib/logger.ts';
import { createIdp } from './app/idp.ts';
import { KeyEncryptionError } from './keys/key-encryption.ts';

// `npm start`: the server on PORT, on DATABASE_URL or the embedded database in DATA_DIR.

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`agent-idp: configuration error: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const logger = createLogger(config.logLevel);
let idp;
try {
  idp = await createIdp(config, logger);
} catch (err) {
  const message = err instanceof KeyEncryptionError || err instanceof ConfigError ? err.message : `could not start: ${(err as Error).message}`;
  process.stderr.write(`agent-idp: ${message}\n`);
  process.exit(1);
}

if (idp.bootstrap.generatedAdmin) {
  // Shown once, on the terminal only (never through the logger): this is the way in. Before
  // listening, so that a start that fails there (a port in use) does not lose it.
  const { clientId, clientSecret } = idp.bootstrap.generatedAdmin;
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
  url = await idp.listen();
} catch (err) {
  // A misconfiguration, not a crash: one line, and the embedded database and DATA_DIR released.
  await idp.close().catch(() => {});
  process.stderr.write(`agent-idp: ${listenFailure(err as NodeJS.ErrnoException)}\n`);
  process.exit(1);
}
logger.info('agent-idp listening', {
  url,
  issuer: config.publicUrl,
  database: config.databaseUrl ? 'postgresql' : `embedded (${config.dataDir})`,
});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) {
    // A second signal: stop waiting out SHUTDOWN_DELAY_SECONDS (requests in flight still finish).
    logger.info('second signal: closing without waiting for the shutdown delay', { signal });
    void idp!.close();
    return;
  }
  stopping = true;
  logger.info('shutting down: draining requests', { signal });
  try {
    await idp!.close();
    logger.info('stopped');
    process.exit(0);
  } catch (err) {
    logger.error('shutdown failed', { err });
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

function listenFailure(err: NodeJS.ErrnoException): string {
  const { port, host } = config!;
  const settings = host === '0.0.0.0' ? `PORT=${port}` : `PORT=${port}, HOST=${host}`;
  if (err.code === 'EADDRINUSE') return `port ${port} is already in use (${settings})`;
  if (err.code === 'EACCES') return `not allowed to listen on port ${port} (${settings}; ports below 1024 need privileges)`;
  if (err.code === 'EADDRNOTAVAIL') return `${host} is not an address of this machine (${settings})`;
  return `could not listen on ${host}:${port}: ${err.message} (${settings})`;
}
