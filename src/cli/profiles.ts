import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { NotLoggedIn, UsageError } from './errors.ts';

// The profiles file holds client secrets, so it is written 0600 (in a 0700 folder when the CLI
// makes the folder) and replaced by a rename, never left half-written.

export interface Profile {
  url: string;
  clientId: string;
  clientSecret: string;
}

interface ProfilesFile {
  profiles: Record<string, Profile>;
}

export const DEFAULT_PROFILE = 'default';

export function profilesPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AGENT_IDP_CONFIG) return env.AGENT_IDP_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'agent-idp', 'config.json');
}

function readProfiles(path: string): ProfilesFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<ProfilesFile>;
    return { profiles: parsed.profiles ?? {} };
  } catch {
    throw new UsageError(`${path} is not valid JSON; fix or remove it`);
  }
}

function writeProfiles(path: string, file: ProfilesFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  // A file created by an older version, or by hand, may have a wider mode: narrow it too.
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

export function saveProfile(name: string, profile: Profile): string {
  const path = profilesPath();
  const file = readProfiles(path);
  file.profiles[name] = profile;
  writeProfiles(path, file);
  return path;
}

/** Removes the profile; false when there was none. */
export function removeProfile(name: string): boolean {
  const path = profilesPath();
  const file = readProfiles(path);
  if (!(name in file.profiles)) return false;
  delete file.profiles[name];
  writeProfiles(path, file);
  return true;
}

/**
 * Who the CLI acts as: the profile, with AGENT_IDP_URL, AGENT_IDP_CLIENT_ID and
 * AGENT_IDP_CLIENT_SECRET each overriding its field (CI sets all three and needs no file).
 */
export function resolveProfile(name: string, env: NodeJS.ProcessEnv = process.env): Profile & { source: string } {
  const path = profilesPath(env);
  const stored: Partial<Profile> = readProfiles(path).profiles[name] ?? {};
  const url = env.AGENT_IDP_URL || stored.url;
  const clientId = env.AGENT_IDP_CLIENT_ID || stored.clientId;
  const clientSecret = env.AGENT_IDP_CLIENT_SECRET || stored.clientSecret;
  if (!url || !clientId || !clientSecret) {
    throw new NotLoggedIn(
      `not logged in (no profile "${name}" in ${path}): run \`agent-idp login --url URL --client-id ID\`, or set AGENT_IDP_URL, AGENT_IDP_CLIENT_ID and AGENT_IDP_CLIENT_SECRET`,
    );
  }
  const fromEnv = Boolean(env.AGENT_IDP_URL || env.AGENT_IDP_CLIENT_ID || env.AGENT_IDP_CLIENT_SECRET);
  return { url: normalizeUrl(url), clientId, clientSecret, source: fromEnv ? 'environment' : `profile ${name} (${path})` };
}

export function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`not an http(s) URL: ${url}`);
  return parsed.href.replace(/\/+$/, '');
}
