import type { Command } from 'commander';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { oauthPost, requestToken } from '../api.ts';
import { keyClient, type KeyClient } from '../assertion.ts';
import { globals, readStdin } from '../context.ts';
import { UsageError } from '../errors.ts';
import { localTime, note, printJson, printRecord, type Cell } from '../output.ts';
import { resolveProfile, type Profile } from '../profiles.ts';

// Claims that are instants (RFC 7519 §4.1), shown in local time beside their number.
const TIMES = new Set(['exp', 'iat', 'nbf', 'auth_time']);

function claimRows(claims: Record<string, unknown>): [string, Cell][] {
  return Object.entries(claims).map(([name, value]) => {
    if (TIMES.has(name) && typeof value === 'number') return [name, `${value} (${localTime(new Date(value * 1000).toISOString())})`];
    return [name, typeof value === 'string' ? value : JSON.stringify(value)];
  });
}

/** A token given as `-` is read from stdin, so that it need not appear in `ps`. */
async function tokenArgument(token: string): Promise<string> {
  return token === '-' ? (await readStdin()).trim() : token;
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('access tokens: get one, ask the server about one, or look inside one');

  token
    .command('get')
    .description('get an access token as the logged-in agent, or as another with --client-id (its secret on stdin, or --private-key); prints the token alone')
    .option('--scope <scopes>', 'space-separated scopes (default: all the agent holds)')
    .option('--resource <uri>', "the audience (RFC 8707); default the agent's first registered one")
    .option('--client-id <id>', 'get the token as this agent instead; its secret comes on stdin (--client-secret-stdin), or use --private-key')
    .option('--client-secret-stdin', "read the other agent's secret from stdin")
    .option('--private-key <file>', 'authenticate with private_key_jwt, signing with this PKCS#8 PEM (with --client-id, or as the logged-in agent)')
    .option('--alg <alg>', "the private key's algorithm (default from the key: ES256, EdDSA, RS256; PS256 must be named)")
    .action(
      async (
        options: { scope?: string; resource?: string; clientId?: string; clientSecretStdin?: boolean; privateKey?: string; alg?: string },
        command: Command,
      ) => {
        const own = resolveProfile(globals(command).profile);
        let profile: Profile | KeyClient = own;
        if (options.privateKey) {
          if (options.clientSecretStdin) throw new UsageError('--private-key and --client-secret-stdin are two ways to authenticate: give one');
          profile = await keyClient(own.url, options.clientId ?? own.clientId, options.privateKey, options.alg);
        } else if (options.alg) {
          throw new UsageError('--alg goes with --private-key');
        } else if (options.clientId) {
          if (!options.clientSecretStdin) throw new UsageError('--client-id needs --client-secret-stdin or --private-key (no flag takes a secret)');
          profile = { url: own.url, clientId: options.clientId, clientSecret: await readStdin() };
        } else if (options.clientSecretStdin) {
          throw new UsageError('--client-secret-stdin goes with --client-id');
        }
        const answer = await requestToken(profile, { scope: options.scope, resource: options.resource });
        if (globals(command).json) return printJson(answer);
        process.stdout.write(answer.access_token + '\n');
        note(`expires in ${answer.expires_in} s; scope: ${answer.scope ?? '(none)'}`);
      },
    );

  token
    .command('introspect')
    .description('ask the server whether a token is active (RFC 7662), as the logged-in agent; TOKEN - reads it from stdin')
    .argument('<token>')
    .action(async (given: string, _options: unknown, command: Command) => {
      const answer = (await oauthPost(resolveProfile(globals(command).profile), '/token/introspect', { token: await tokenArgument(given) })) as Record<
        string,
        unknown
      >;
      if (globals(command).json) return printJson(answer);
      printRecord(claimRows(answer));
    });

  token
    .command('decode')
    .description('show the header and claims of a JWT, WITHOUT verifying it (use introspect to check it); TOKEN - reads it from stdin')
    .argument('<token>')
    .action(async (given: string, _options: unknown, command: Command) => {
      const jwt = await tokenArgument(given);
      let header: Record<string, unknown>;
      let payload: Record<string, unknown>;
      try {
        header = decodeProtectedHeader(jwt) as Record<string, unknown>;
        payload = decodeJwt(jwt) as Record<string, unknown>;
      } catch (err) {
        throw new UsageError(`not a JWT: ${(err as Error).message}`);
      }
      note('decoded only: the signature, issuer, audience and expiry were NOT verified (`agent-idp token introspect` asks the server)');
      if (globals(command).json) return printJson({ header, payload });
      printRecord([...claimRows(header).map(([k, v]): [string, Cell] => [`header.${k}`, v]), ...claimRows(payload)]);
    });
}
