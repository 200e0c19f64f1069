import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

// The system's Chromium for the browser tests (Debian's `chromium`; .ci/run installs it), driven
// by playwright-core, which downloads no browser of its own. Where it is missing the browser
// tests skip and say why; with REQUIRE_BROWSER=1 (CI) they fail instead.

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** CHROMIUM_PATH, else the first chromium on PATH, else undefined. */
export function chromiumPath(): string | undefined {
  if (process.env.CHROMIUM_PATH) return executable(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : undefined;
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/bin', '/usr/local/bin']);
  for (const name of ['chromium', 'chromium-browser']) {
    for (const dir of dirs) {
      if (dir && executable(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

export const browserRequired = process.env.REQUIRE_BROWSER === '1';
