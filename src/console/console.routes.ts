import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import type { Context } from 'koa';

// The admin console (design/console.md): a folder of static files (plain ES modules, CSS, one
// HTML page) served at /console. The page calls /token and /api/v1 like any other client; this
// router only hands out the files, each with headers that stop it from being framed, sniffed or
// made to run anything that did not come from this server.

export const CONSOLE_PATH = '/console';

const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Only this server's files, no inline script or style, nothing else: the page renders API data
 * with DOM APIs, so no injected markup could run. connect-src 'self' keeps the token from being
 * sent anywhere but here; frame-ancestors 'none' stops clickjacking (X-Frame-Options for older
 * browsers).
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every file of the folder, read once at start: the set is fixed, so no request names a path on disk. */
function loadStaticFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }
  return files;
}

function send(ctx: Context, file: StaticFile): void {
  ctx.set('Content-Security-Policy', CONSOLE_CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  // The files are not versioned by name, so each load revalidates; an unchanged file costs a 304.
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('ETag', file.etag);
  ctx.type = file.type;
  if (ctx.get('if-none-match') === file.etag) {
    ctx.status = 304;
    return;
  }
  ctx.body = file.body;
}

export function consoleRoutes(dir: string = STATIC_DIR): Router {
  const files = loadStaticFiles(dir);
  const index = files.get('index.html');
  if (!index) throw new Error(`the console has no index.html in ${dir}`);
  const router = new Router();
  // /console and /console/ are the page (it names its files by absolute path); its scripts and styles sit beside it.
  router.get([CONSOLE_PATH, `${CONSOLE_PATH}/`], (ctx) => send(ctx, index));
  router.get(`${CONSOLE_PATH}/:name`, (ctx, next) => {
    const file = files.get(ctx.params.name);
    if (!file) return next();
    send(ctx, file);
  });
  return router;
}
