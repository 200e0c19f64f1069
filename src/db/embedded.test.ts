import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.ts';

// pglite-socket lets in any user with any password as superuser: the embedded database must be
// reachable by this user only, through a Unix socket in a 0700 directory, and by no TCP port.

/** Inodes of the TCP sockets in LISTEN state that this process holds (Linux /proc). */
function listeningTcpSocketsOfThisProcess(): Set<string> {
  const mine = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) mine.add(match[1]);
    } catch {
      // closed while we looked
    }
  }
  const listening = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // st 0A is LISTEN; the inode is the tenth field.
      if (fields[3] === '0A' && mine.has(fields[9])) listening.add(fields[9]);
    }
  }
  return listening;
}

async function selectOne(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0].one;
  } finally {
    await client.end();
  }
}

/** Tries to open the socket as another user (nobody), from a process of its own. */
async function connectAs(uid: number, socketPath: string): Promise<string> {
  const script = `require('node:net').connect(${JSON.stringify(socketPath)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); });`;
  const child = spawn(process.execPath, ['-e', script], { uid, gid: uid, cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  await new Promise((resolve) => child.once('exit', resolve));
  return out.trim();
}

const socketPath = (e: EmbeddedPostgres) => join(e.socketDir, '.s.PGSQL.5432');
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

describe('the embedded database', () => {
  let dataDir: string;
  let embedded: EmbeddedPostgres | undefined;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'aidp-embedded-'));
  });

  afterEach(async () => {
    await embedded?.stop();
    embedded = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('in memory: is served on a Unix socket in a 0700 directory, opens no TCP port, and removes the directory on stop', async () => {
    const before = listeningTcpSocketsOfThisProcess();
    embedded = await startEmbeddedPostgres(undefined);

    expect(new URL(embedded.url).searchParams.get('host')).toBe(embedded.socketDir);
    expect(statSync(embedded.socketDir).mode & 0o777).toBe(0o700);
    expect(statSync(socketPath(embedded)).isSocket()).toBe(true);
    expect([...listeningTcpSocketsOfThisProcess()].filter((inode) => !before.has(inode))).toEqual([]);
    expect(await selectOne(embedded.url)).toBe(1);

    const dir = embedded.socketDir;
    await embedded.stop();
    embedded = undefined;
    expect(existsSync(dir)).toBe(false);
  });

  it('in DATA_DIR: the socket is in DATA_DIR/socket, made 0700 even when it was not, and gone after stop', async () => {
    mkdirSync(join(dataDir, 'socket'), { mode: 0o755 });
    embedded = await startEmbeddedPostgres(dataDir);

    expect(embedded.socketDir).toBe(join(dataDir, 'socket'));
    expect(statSync(embedded.socketDir).mode & 0o777).toBe(0o700);
    expect(await selectOne(embedded.url)).toBe(1);

    const socket = socketPath(embedded);
    await embedded.stop();
    embedded = undefined;
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(join(dataDir, 'agent-idp.pid'))).toBe(false);
  });

  it('refuses a DATA_DIR/socket that is a symlink (to a directory someone else may open), and releases DATA_DIR', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'aidp-elsewhere-'));
    try {
      symlinkSync(elsewhere, join(dataDir, 'socket'));
      await expect(startEmbeddedPostgres(dataDir)).rejects.toThrow(/must be a directory owned by this user/);
      expect(readdirSync(elsewhere)).toEqual([]);
      expect(existsSync(join(dataDir, 'agent-idp.pid'))).toBe(false);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('in a DATA_DIR too deep for a socket path: the socket is in a temporary 0700 directory, removed on stop', async () => {
    const deep = join(dataDir, 'd'.repeat(120));
    embedded = await startEmbeddedPostgres(deep);

    expect(embedded.socketDir.startsWith(tmpdir())).toBe(true);
    expect(statSync(embedded.socketDir).mode & 0o777).toBe(0o700);
    expect(await selectOne(embedded.url)).toBe(1);

    const dir = embedded.socketDir;
    await embedded.stop();
    embedded = undefined;
    expect(existsSync(dir)).toBe(false);
  });

  (asRoot ? it : it.skip)('refuses another local user: the socket cannot be opened as nobody [needs root to act as another user]', async () => {
    // DATA_DIR itself open to all (as ./data may be): only the socket directory keeps nobody out.
    chmodSync(dataDir, 0o755);
    embedded = await startEmbeddedPostgres(dataDir);
    // And the socket writable by all (as under umask 0): the directory alone must keep nobody out.
    chmodSync(socketPath(embedded), 0o777);

    expect(await connectAs(NOBODY, socketPath(embedded))).toBe('EACCES');
    // The same attempt as this user gets in: the refusal is the directory's mode, not a broken socket.
    expect(await connectAs(process.getuid!(), socketPath(embedded))).toBe('connected');
  });
});
