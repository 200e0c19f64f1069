#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerAgents } from './commands/agents.ts';
import { registerAudit } from './commands/audit.ts';
import { registerAuth } from './commands/auth.ts';
import { registerCredentials } from './commands/credentials.ts';
import { registerKeys } from './commands/keys.ts';
import { registerOrgs, registerUsage } from './commands/orgs.ts';
import { registerToken } from './commands/token.ts';
import { CliError } from './errors.ts';
import { DEFAULT_PROFILE } from './profiles.ts';

// `agent-idp` (package.json bin; `npm run -s cli -- ...` in the repo): the operator CLI. It
// talks to a running server over HTTP only, except the set-up commands, which need none.
// Exit codes (design/cli-and-sdk.md): 0 ok, 1 the server refused, 2 usage, 3 unreachable or not logged in.

const program = new Command('agent-idp')
  .description('operate an agent-idp server: agents, credentials, keys, audit log, tokens')
  .option('--json', "print the API's JSON unchanged, one document, nothing else on stdout")
  .option('--profile <name>', 'the saved profile to use', DEFAULT_PROFILE)
  .configureHelp({ showGlobalOptions: true })
  .showHelpAfterError('(add --help for usage)')
  .exitOverride();

registerAuth(program);
registerOrgs(program);
registerAgents(program);
registerCredentials(program);
registerKeys(program);
registerAudit(program);
registerToken(program);
registerUsage(program);

program.commandsGroup?.('Set-up (no server needed; migrate uses DATABASE_URL or the embedded database):');
program
  .command('migrate')
  .description('run pending migrations on DATABASE_URL (or the embedded database)')
  .action(async () => (await import('./setup.ts')).migrate());
program
  .command('bootstrap-credentials')
  .description('print a fresh BOOTSTRAP_ADMIN_CLIENT_ID / BOOTSTRAP_ADMIN_CLIENT_SECRET pair')
  .action(async () => (await import('./setup.ts')).bootstrapCredentials());
program
  .command('generate-kek')
  .description('print a fresh KEY_ENCRYPTION_KEY (32 random bytes, base64)')
  .action(async () => (await import('./setup.ts')).generateKek());

// Every command and group inherits the exit override, so commander's usage errors reach the catch below.
function exitOverrideAll(command: Command): void {
  command.exitOverride();
  command.commands.forEach(exitOverrideAll);
}
exitOverrideAll(program);

try {
  if (process.argv.length <= 2) {
    // No command: the usage, as a request for help.
    program.outputHelp();
  } else {
    await program.parseAsync();
  }
} catch (err) {
  if (err instanceof CommanderError) {
    // commander has printed its message; --help and --version are successes, the rest usage errors.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof CliError) {
    process.stderr.write(`agent-idp: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`agent-idp: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  }
}
