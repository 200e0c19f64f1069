import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from '../config/index.ts';
import { createLogger } from './lib/logger.ts';

// `npm start`: the server on PORT, on DATABASE_URL or the embedded database in DATA_DIR; with
// WORKERS > 1, a cluster of that many (src/app/cluster.ts), each worker running this file again.

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`agent-idp: configuration error: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

// In a cluster every line says which process wrote it.
const logger = createLogger(config.logLevel, undefined, config.workers > 1 ? { pid: process.pid } : {});
if (config.workers > 1 && cluster.isPrimary) {
  // Imported here so that the primary, which holds no database, loads none of the service.
  const { runPrimary } = await import('./app/cluster.ts');
  await runPrimary(config, logger);
} else {
  const { serve } = await import('./app/serve.ts');
  await serve(config, logger);
}
