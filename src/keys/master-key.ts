import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseKeyEncryptionKey, type Config } from '../../config/index.ts';

export const MASTER_KEY_FILE = 'key-encryption.key';

/**
 * KEY_ENCRYPTION_KEY from the environment, or, in embedded mode only, the one generated into
 * DATA_DIR at first start (readable by its owner only).
 */
export function resolveMasterKey(config: Config): Buffer {
  if (config.keyEncryptionKey) return config.keyEncryptionKey;
  const dir = resolve(config.dataDir);
  const file = join(dir, MASTER_KEY_FILE);
  if (existsSync(file)) return parseKeyEncryptionKey(readFileSync(file, 'utf8').trim(), file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}
