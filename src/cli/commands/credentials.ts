import { InvalidArgumentError, type Command } from 'commander';
import type { components } from '../../../openapi/openapi-types.ts';
import type { ManagementApi } from '../api.ts';
import { globals, instant, integer, managementApi } from '../context.ts';
import { Refused } from '../errors.ts';
import { localTime, note, printJson, printRecord, printTable, SecretSink, notePage } from '../output.ts';

type Credential = components['schemas']['Credential'];
type CredentialWithSecret = components['schemas']['CredentialWithSecret'];
type CredentialList = components['schemas']['CredentialList'];

const path = (agentId: string, credentialId?: string) =>
  `/agents/${encodeURIComponent(agentId)}/credentials${credentialId ? `/${encodeURIComponent(credentialId)}` : ''}`;

// The server makes client secrets only; private_key_jwt credentials come with a later release.
function credentialType(value: string): string {
  if (value === 'secret') return value;
  if (value === 'private_key_jwt') throw new InvalidArgumentError('private_key_jwt credentials are not supported by the server yet; only secret exists.');
  throw new InvalidArgumentError('the only type is secret.');
}

function printCredential(c: Credential, extra: [string, string][] = []): void {
  printRecord([
    ['credential id', c.credentialId],
    ['client id', c.clientId],
    ['status', c.status],
    ['created', localTime(c.createdAt)],
    ['expires', localTime(c.expiresAt) ?? 'never'],
    ['revoked', localTime(c.revokedAt)],
    ['rotated', localTime(c.rotatedAt)],
    ['previous secret until', localTime(c.previousSecretExpiresAt)],
    ...extra,
  ]);
}

/** A credential with its new secret: to the --out file, or printed once with a warning. */
function printNewSecret(c: CredentialWithSecret, sink: SecretSink, json: boolean | undefined): void {
  const clientSecret = c.clientSecret ?? '';
  sink.deliver(clientSecret);
  const { clientSecret: _shown, ...rest } = c;
  // With --out the secret stays off stdout, in --json too: that is what --out is for.
  if (json) return printJson(sink.toFile ? rest : c);
  printCredential(rest, sink.toFile ? [] : [['client secret', clientSecret]]);
}

async function allCredentials(api: ManagementApi, agentId: string): Promise<Credential[]> {
  const found: Credential[] = [];
  for (let page = 1; ; page++) {
    const answer = await api.get<CredentialList>(path(agentId), { page, limit: 100 });
    found.push(...answer.data);
    if (found.length >= answer.total || answer.data.length === 0) return found;
  }
}

export function registerCredentials(program: Command): void {
  const credentials = program
    .command('credentials')
    .description("an agent's credentials (client secrets; private_key_jwt credentials are not supported by the server yet)");

  credentials
    .command('list')
    .description("list an agent's credentials (never their secrets)")
    .argument('<agent-id>')
    .option('--status <status>', 'only credentials in this status: active, revoked or expired')
    .option('--page <n>', 'page number', integer(1), 1)
    .option('--limit <n>', 'credentials per page (at most 100)', integer(1, 100), 20)
    .action(async (agentId: string, options: { status?: string; page: number; limit: number }, command: Command) => {
      const page = await managementApi(command).get<CredentialList>(path(agentId), options);
      if (globals(command).json) return printJson(page);
      printTable(
        ['CREDENTIAL ID', 'STATUS', 'CREATED', 'EXPIRES', 'ROTATED'],
        page.data.map((c) => [c.credentialId, c.status, localTime(c.createdAt), localTime(c.expiresAt) ?? 'never', localTime(c.rotatedAt)]),
      );
      notePage(page, 'credentials');
    });

  credentials
    .command('get')
    .description("show one credential (found by listing the agent's credentials: the API has no GET of one)")
    .argument('<agent-id>')
    .argument('<credential-id>')
    .action(async (agentId: string, credentialId: string, _options: unknown, command: Command) => {
      const found = (await allCredentials(managementApi(command), agentId)).find((c) => c.credentialId === credentialId);
      if (!found) throw new Refused(404, 'not_found', 'Credential not found.');
      if (globals(command).json) return printJson(found);
      printCredential(found);
    });

  credentials
    .command('create')
    .description('make a new client secret for an agent; its other secrets keep working')
    .argument('<agent-id>')
    .option('--type <type>', 'secret (the only type the server has today)', credentialType, 'secret')
    .option('--expires-at <time>', 'when the secret stops working (ISO 8601); default never', instant)
    .option('--out <file>', 'write the secret to this new file (mode 0600) instead of printing it')
    .action(async (agentId: string, options: { expiresAt?: string; out?: string }, command: Command) => {
      const api = managementApi(command);
      const sink = new SecretSink(options.out);
      const body = options.expiresAt ? { expiresAt: options.expiresAt } : {};
      const created = await sink.around(() => api.request<CredentialWithSecret>('POST', path(agentId), { body }));
      printNewSecret(created, sink, globals(command).json);
    });

  credentials
    .command('rotate')
    .description("replace a credential's secret under the same credential id")
    .argument('<agent-id>')
    .argument('<credential-id>')
    .option('--grace-period <seconds>', 'how long the replaced secret keeps working (0 to 604800; default 0)', integer(0, 604800))
    .option('--out <file>', 'write the new secret to this new file (mode 0600) instead of printing it')
    .action(async (agentId: string, credentialId: string, options: { gracePeriod?: number; out?: string }, command: Command) => {
      const api = managementApi(command);
      const sink = new SecretSink(options.out);
      const body = options.gracePeriod !== undefined ? { gracePeriodSeconds: options.gracePeriod } : {};
      const rotated = await sink.around(() => api.request<CredentialWithSecret>('POST', `${path(agentId, credentialId)}/rotate`, { body }));
      printNewSecret(rotated, sink, globals(command).json);
    });

  credentials
    .command('revoke')
    .description('revoke a credential: its secret stops working at once')
    .argument('<agent-id>')
    .argument('<credential-id>')
    .action(async (agentId: string, credentialId: string, _options: unknown, command: Command) => {
      await managementApi(command).request('DELETE', path(agentId, credentialId));
      note(`credential ${credentialId} revoked`);
    });
}
