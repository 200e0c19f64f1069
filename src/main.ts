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

const url = await idp.listen();
logger.info('agent-idp listening', {
  url,
  issuer: config.publicUrl,
  database: config.databaseUrl ? 'postgresql' : `embedded (${config.dataDir})`,
});

if (idp.bootstrap.generatedAdmin) {
  // Shown once, on the terminal only (never through the logger): this is the way in.
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

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
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
