import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';

// The embedded mode: a real PostgreSQL (PGlite, compiled to WASM) served on a loopback port by
// pglite-socket, so that the application talks to it through the ordinary `pg` driver and the
// same code path as production. PGlite is one connection: callers use a pool of one.

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes DATA_DIR for this process, refusing when another live process holds it. */
function lockDataDir(dir: string): () => void {
  const lockFile = join(dir, 'agent-idp.pid');
  try {
    const pid = Number(readFileSync(lockFile, 'utf8'));
    if (pid && pid !== process.pid && isRunning(pid)) {
      throw new Error(`DATA_DIR ${dir} is in use by process ${pid}; the embedded database serves one process`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  writeFileSync(lockFile, String(process.pid));
  return () => rmSync(lockFile, { force: true });
}

/**
 * Starts PGlite on `dataDir` (or in memory when dataDir is undefined, for tests) and serves it
 * on 127.0.0.1 on a free port.
 */
export async function startEmbeddedPostgres(dataDir: string | undefined): Promise<EmbeddedPostgres> {
  // Loaded only here: a server on PostgreSQL does not carry PGlite (about 7 MB of RSS).
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-socket')]);
  let unlock = () => {};
  let db: PGlite;
  if (dataDir === undefined) {
    db = await PGlite.create();
  } else {
    const dir = resolve(dataDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    unlock = lockDataDir(dir);
    db = await PGlite.create(join(dir, 'pg'));
  }
  // The application holds one connection (pool of one). The spare slots let a new connection in
  // while the server is still closing a previous one (a reconnect, a restart in the same
  // process); pglite-socket serialises them and keeps a transaction to its own connection.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 4 });
  await server.start();
  const address = (server as unknown as { server: { address(): { port: number } } }).server.address();
  return {
    url: `postgres://postgres@127.0.0.1:${address.port}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
      unlock();
    },
  };
}
