import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';

// The embedded mode: a real PostgreSQL (PGlite, compiled to WASM) served by pglite-socket, so
// that the application talks to it through the ordinary `pg` driver and the same code path as
// production. PGlite is one connection: callers use a pool of one.
//
// pglite-socket accepts any user and password as superuser, so it is served on a Unix socket
// in a directory only this user may enter (0700), never on a TCP port that every local user
// can reach.

export interface EmbeddedPostgres {
  url: string;
  /** The directory of the Unix socket (`.s.PGSQL.5432`), as libpq's `host`. */
  socketDir: string;
  stop(): Promise<void>;
}

// The name libpq and `pg` look for in `host` when it is a directory.
const SOCKET_PORT = 5432;
const SOCKET_NAME = `.s.PGSQL.${SOCKET_PORT}`;
// sun_path holds 108 bytes on Linux and 104 on macOS, the terminating NUL included.
const SOCKET_PATH_MAX = 103;

/**
 * The socket's directory: DATA_DIR/socket, or a fresh temporary one for an in-memory database
 * or a DATA_DIR too deep for a socket path. Returns how to remove what was made.
 */
function socketDirectory(dataDir: string | undefined): { dir: string; remove: () => void } {
  if (dataDir !== undefined) {
    const dir = join(dataDir, 'socket');
    if (Buffer.byteLength(join(dir, SOCKET_NAME)) <= SOCKET_PATH_MAX) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // Not a symlink to, or a directory of, someone else: the mode below must guard our socket.
      const found = lstatSync(dir);
      if (!found.isDirectory() || (process.getuid !== undefined && found.uid !== process.getuid())) {
        throw new Error(`${dir} must be a directory owned by this user (it holds the embedded database's socket)`);
      }
      // mkdir's mode applies only to a directory it creates.
      chmodSync(dir, 0o700);
      // This process holds the DATA_DIR lock: a socket file left there is from one that died.
      rmSync(join(dir, SOCKET_NAME), { force: true });
      return { dir, remove: () => rmSync(join(dir, SOCKET_NAME), { force: true }) };
    }
  }
  // mkdtemp creates the directory with mode 0700.
  const dir = mkdtempSync(join(tmpdir(), 'agent-idp-pg-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Whether a process of this pid lives (EPERM: it does, as another user's). */
export function isRunning(pid: number): boolean {
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
 * on a Unix socket that only this user can reach.
 */
export async function startEmbeddedPostgres(dataDir: string | undefined): Promise<EmbeddedPostgres> {
  // Loaded only here: a server on PostgreSQL does not carry PGlite (about 7 MB of RSS).
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-socket')]);
  let unlock = () => {};
  let dir: string | undefined;
  let db: PGlite;
  if (dataDir === undefined) {
    db = await PGlite.create();
  } else {
    dir = resolve(dataDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    unlock = lockDataDir(dir);
    db = await PGlite.create(join(dir, 'pg'));
  }
  let socket: ReturnType<typeof socketDirectory> | undefined;
  let server: InstanceType<typeof PGLiteSocketServer>;
  try {
    socket = socketDirectory(dir);
    // The application holds one connection (pool of one). The spare slots let a new connection
    // in while the server is still closing a previous one (a reconnect, a restart in the same
    // process); pglite-socket serialises them and keeps a transaction to its own connection.
    server = new PGLiteSocketServer({ db, path: join(socket.dir, SOCKET_NAME), maxConnections: 4 });
    await server.start();
  } catch (err) {
    socket?.remove();
    await db.close();
    unlock();
    throw err;
  }
  const { dir: socketDir, remove: removeSocket } = socket;
  const url = new URL(`postgres://postgres@localhost:${SOCKET_PORT}/postgres`);
  // pg reads a directory in `host` as the place of the Unix socket (as libpq does).
  url.searchParams.set('host', socketDir);
  return {
    url: url.toString(),
    socketDir,
    async stop() {
      await server.stop();
      removeSocket();
      await db.close();
      unlock();
    },
  };
}
