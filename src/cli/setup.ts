import { randomBytes, randomUUID } from 'node:crypto';
import { ConfigError, loadConfig } from '../../config/index.ts';
import { openDatabase } from '../db/database.ts';
import { generateSecret } from '../credentials/secrets.ts';
import { CliError } from './errors.ts';

// Set-up chores that need no running server: the only commands that touch the database or the
// server's code. index.ts loads this file only for them, so the HTTP commands start fast.

export async function migrate(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`configuration error: ${err.message}`, 1);
    throw err;
  }
  // openDatabase runs every pending migration.
  const database = await openDatabase(config);
  const rows: { name: string }[] = await database.dataSource.query('SELECT name FROM migrations ORDER BY id');
  process.stdout.write(`database is at the latest migration (${rows.length} applied; last: ${rows.at(-1)?.name ?? 'none'})\n`);
  await database.close();
}

export function bootstrapCredentials(): void {
  const credentialId = randomUUID();
  process.stdout.write(`BOOTSTRAP_ADMIN_CLIENT_ID=${randomUUID()}\nBOOTSTRAP_ADMIN_CLIENT_SECRET=${generateSecret(credentialId)}\n`);
}

export function generateKek(): void {
  process.stdout.write(`KEY_ENCRYPTION_KEY=${randomBytes(32).toString('base64')}\n`);
}
