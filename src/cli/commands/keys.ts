import { InvalidArgumentError, type Command } from 'commander';
import type { components } from '../../../openapi/openapi-types.ts';
import { globals, managementApi } from '../context.ts';
import { localTime, note, printJson, printTable } from '../output.ts';

type Key = components['schemas']['Key'];
type KeyList = components['schemas']['KeyList'];
type KeyRotation = components['schemas']['KeyRotation'];

const ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

function alg(value: string): string {
  if (!ALGS.includes(value)) throw new InvalidArgumentError(`one of ${ALGS.join(', ')}.`);
  return value;
}

function printKeys(keys: Key[]): void {
  printTable(
    ['KID', 'ALG', 'STATUS', 'CREATED', 'ACTIVATED', 'RETIRED', 'REVOKED'],
    keys.map((k) => [k.kid, k.alg, k.status, localTime(k.createdAt), localTime(k.activatedAt), localTime(k.retiredAt), localTime(k.revokedAt)]),
  );
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('signing keys (operators only)');

  keys
    .command('list')
    .description('list signing keys, oldest first (public halves only)')
    .action(async (_options: unknown, command: Command) => {
      const list = await managementApi(command).get<KeyList>('/keys');
      if (globals(command).json) return printJson(list);
      printKeys(list.data);
    });

  keys
    .command('create')
    .description('create a key in state next: published at once, signing from a later rotation')
    .option('--alg <alg>', `${ALGS.join(', ')}; default the server's KEY_ALG`, alg)
    .action(async (options: { alg?: string }, command: Command) => {
      const key = await managementApi(command).request<Key>('POST', '/keys', { body: options.alg ? { alg: options.alg } : {} });
      if (globals(command).json) return printJson(key);
      printKeys([key]);
    });

  keys
    .command('rotate')
    .description('rotate now: next → active, active → retired, and a new next key')
    .action(async (_options: unknown, command: Command) => {
      const rotation = await managementApi(command).request<KeyRotation>('POST', '/keys/rotate');
      if (globals(command).json) return printJson(rotation);
      printKeys([rotation.active, rotation.next]);
    });

  keys
    .command('revoke')
    .description('revoke a key now: out of the JWKS, and every token it signed introspects inactive')
    .argument('<kid>')
    .action(async (kid: string, _options: unknown, command: Command) => {
      const key = await managementApi(command).request<Key>('POST', `/keys/${encodeURIComponent(kid)}/revoke`);
      if (globals(command).json) return printJson(key);
      printKeys([key]);
    });

  keys
    .command('delete')
    .description('delete a revoked key')
    .argument('<kid>')
    .action(async (kid: string, _options: unknown, command: Command) => {
      await managementApi(command).request('DELETE', `/keys/${encodeURIComponent(kid)}`);
      note(`key ${kid} deleted`);
    });
}
