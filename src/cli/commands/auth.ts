import type { Command } from 'commander';
import type { components } from '../../../openapi/openapi-types.ts';
import { ManagementApi, oauthPost, requestToken } from '../api.ts';
import { globals, promptHidden, readStdin } from '../context.ts';
import { Refused, UsageError } from '../errors.ts';
import { list, note, printJson, printRecord } from '../output.ts';
import { normalizeUrl, profilesPath, removeProfile, resolveProfile, saveProfile } from '../profiles.ts';

type Agent = components['schemas']['Agent'];

async function readSecret(fromStdin: boolean | undefined): Promise<string> {
  if (fromStdin) return (await readStdin()).trim();
  if (!process.stdin.isTTY) throw new UsageError('no terminal to ask for the secret on: pipe it in with --client-secret-stdin');
  return promptHidden('client secret: ');
}

export function registerAuth(program: Command): void {
  program
    .command('login')
    .description("check an agent's credentials by getting a token, and save them as a profile (file mode 0600)")
    .requiredOption('--url <url>', "the server's public URL (its issuer, PUBLIC_URL)")
    .requiredOption('--client-id <id>', "the agent's client id")
    .option('--client-secret-stdin', 'read the secret from stdin instead of asking for it without echo')
    .action(async (options: { url: string; clientId: string; clientSecretStdin?: boolean }, command: Command) => {
      const url = normalizeUrl(options.url);
      const clientSecret = await readSecret(options.clientSecretStdin);
      if (!clientSecret) throw new UsageError('the secret is empty');
      const profile = { url, clientId: options.clientId, clientSecret };
      await requestToken(profile);
      const name = globals(command).profile;
      const path = saveProfile(name, profile);
      if (globals(command).json) return printJson({ profile: name, url, clientId: options.clientId, path });
      note(`logged in to ${url} as ${options.clientId}; profile "${name}" saved in ${path}`);
    });

  program
    .command('logout')
    .description('remove the profile (the secret stays valid on the server: revoke it there if it leaked)')
    .action((_options: unknown, command: Command) => {
      const name = globals(command).profile;
      const removed = removeProfile(name);
      note(removed ? `profile "${name}" removed from ${profilesPath()}` : `no profile "${name}" in ${profilesPath()}`);
    });

  program
    .command('whoami')
    .description('the agent the CLI acts as: its id, org and scopes (from introspecting its own token)')
    .action(async (_options: unknown, command: Command) => {
      const profile = resolveProfile(globals(command).profile);
      const api = new ManagementApi(profile);
      let token: string;
      try {
        token = await api.accessToken();
      } catch (err) {
        // An agent without a management scope may not ask for the API's audience: any token shows who it is.
        if (!(err instanceof Refused && err.code === 'invalid_target')) throw err;
        token = (await requestToken(profile)).access_token;
      }
      const claims = (await oauthPost(profile, '/token/introspect', { token })) as Record<string, unknown>;
      if (globals(command).json) return printJson(claims);
      const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
      let name: string | undefined;
      if (scopes.includes('agents:read') && typeof claims.sub === 'string') {
        name = (await api.get<Agent>(`/agents/${encodeURIComponent(claims.sub)}`)).name;
      }
      printRecord([
        ['url', profile.url],
        ['from', profile.source],
        ['agent id', claims.sub as string],
        ['agent name', name],
        ['org', claims.org_id as string],
        ['scopes', list(scopes)],
      ]);
    });
}
