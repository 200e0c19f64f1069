import { randomBytes, randomUUID } from 'node:crypto';
import { ConfigError, loadConfig } from '../../config/index.ts';
import { openDatabase } from '../db/database.ts';
import { generateSecret } from '../credentials/secrets.ts';

// `npm run cli -- <command>`: operator chores that need no running server.

const USAGE = `usage: npm run cli -- <command>

commands:
  migrate                  run pending migrations on DATABASE_URL (or the embedded database)
  bootstrap-credentials    print a fresh BOOTSTRAP_ADMIN_CLIENT_ID / BOOTSTRAP_ADMIN_CLIENT_SECRET pair
  generate-kek             print a fresh KEY_ENCRYPTION_KEY (32 random bytes, base64)`;

async function migrate(): Promise<void> {
  const config = loadConfig();
  // openDatabase runs every pending migration.
  const database = await openDatabase(config);
  const rows: { name: string }[] = await database.dataSource.query('SELECT name FROM migrations ORDER BY id');
  process.stdout.write(`database is at the latest migration (${rows.length} applied; last: ${rows.at(-1)?.name ?? 'none'})\n`);
  await database.close();
}

const commands: Record<string, () => Promise<void> | void> = {
  migrate,
  'bootstrap-credentials'() {
    const credentialId = randomUUID();
    process.stdout.write(`BOOTSTRAP_ADMIN_CLIENT_ID=${randomUUID()}\nBOOTSTRAP_ADMIN_CLIENT_SECRET=${generateSecret(credentialId)}\n`);
  },
  'generate-kek'() {
    process.stdout.write(`KEY_ENCRYPTION_KEY=${randomBytes(32).toString('base64')}\n`);
  },
};

const command = commands[process.argv[2] ?? ''];
if (!command) {
  process.stderr.write(USAGE + '\n');
  process.exit(process.argv[2] ? 2 : 0);
}
try {
  await command();
} catch (err) {
  process.stderr.write(`agent-idp: ${err instanceof ConfigError ? 'configuration error: ' : ''}${(err as Error).message}\n`);
  process.exit(1);
}
