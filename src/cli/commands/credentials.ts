import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { components } from '../../../openapi/openapi-types.ts';
import { globals, instant, integer, managementApi } from '../context.ts';
import { UsageError } from '../errors.ts';
import { localTime, note, printJson, printRecord, printTable, SecretSink, notePage } from '../output.ts';

type Credential = components['schemas']['Credential'];
type CredentialWithSecret = components['schemas']['CredentialWithSecret'];
type CredentialList = components['schemas']['CredentialList'];

const TYPES = ['secret', 'private_key_jwt'];
const ALGS = ['ES256', 'RS256', 'PS256', 'EdDSA'];

const path = (agentId: string, credentialId?: string) =>
  `/agents/${encodeURIComponent(agentId)}/credentials${credentialId ? `/${encodeURIComponent(credentialId)}` : ''}`;

function oneOf(values: string[]) {
  return (value: string): string => {
    if (!values.includes(value)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}.`);
    return value;
  };
}

/** A public JWK from a file (`-` for stdin); the server checks it is public, this only that it is a JSON object. */
function readJwk(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    throw new UsageError(`${file} is not JSON: --public-jwk takes a file holding one JWK`);
  }
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) throw new UsageError(`${file} does not hold a JSON object (a JWK)`);
  return jwk as Record<string, unknown>;
}

function printCredential(c: Credential, extra: [string, string][] = []): void {
  const key = c.type === 'private_key_jwt';
  printRecord([
    ['credential id', c.credentialId],
    ['client id', c.clientId],
    ['type', c.type],
    ['name', c.name],
    ...(key
      ? ([
          ['kid', c.kid],
          ['alg', c.alg],
        ] as [string, string | undefined][])
      : []),
    ['status', c.status],
    ['created', localTime(c.createdAt)],
    ['expires', localTime(c.expiresAt) ?? 'never'],
    ['revoked', localTime(c.revokedAt)],
    ['rotated', localTime(c.rotatedAt)],
    [key ? 'previous key until' : 'previous secret until', localTime(c.previousSecretExpiresAt)],
    ...extra,
  ]);
}

/**
 * A credential as created or rotated: its new secret or generated private key to the --out
 * file, or printed once with a warning. An agent's own public key has nothing private to show.
 */
function printNewCredential(c: CredentialWithSecret, sink: SecretSink, json: boolean | undefined): void {
  const { clientSecret, privateKeyPem, privateJwk: _privateJwk, ...rest } = c;
  const secret = clientSecret ?? privateKeyPem;
  if (secret === undefined) {
    sink.discard();
    return json ? printJson(c) : printCredential(rest);
  }
  sink.deliver(secret, clientSecret === undefined ? 'private key' : 'secret');
  // With --out the secret or key stays off stdout, in --json too: that is what --out is for.
  if (json) return printJson(sink.toFile ? rest : c);
  if (clientSecret !== undefined) return printCredential(rest, sink.toFile ? [] : [['client secret', clientSecret]]);
  printCredential(rest);
  // The PEM as it is, after the record, so that it can be cut out of the output with its markers.
  if (!sink.toFile) process.stdout.write(`\n${privateKeyPem!.trimEnd()}\n`);
}

/** A kid as long as it must be to be told apart from the others shown. */
function kidColumn(credentials: Credential[]): (kid: string | undefined) => string | undefined {
  const kids = credentials.map((c) => c.kid).filter((kid): kid is string => Boolean(kid));
  return (kid) => {
    if (!kid) return undefined;
    const short = kid.slice(0, 12);
    return kids.filter((k) => k.startsWith(short)).length === 1 ? `${short}…` : kid;
  };
}

export function registerCredentials(program: Command): void {
  const credentials = program.command('credentials').description("an agent's credentials: client secrets, and key pairs for private_key_jwt (RFC 7523)");

  credentials
    .command('list')
    .description("list an agent's credentials (never their secrets or private keys)")
    .argument('<agent-id>')
    .option('--status <status>', 'only credentials in this status: active, revoked or expired')
    .option('--page <n>', 'page number', integer(1), 1)
    .option('--limit <n>', 'credentials per page (at most 100)', integer(1, 100), 20)
    .action(async (agentId: string, options: { status?: string; page: number; limit: number }, command: Command) => {
      const page = await managementApi(command).get<CredentialList>(path(agentId), options);
      if (globals(command).json) return printJson(page);
      const kid = kidColumn(page.data);
      printTable(
        ['CREDENTIAL ID', 'TYPE', 'NAME', 'KID', 'STATUS', 'CREATED', 'EXPIRES', 'ROTATED'],
        page.data.map((c) => [
          c.credentialId,
          c.type,
          c.name,
          kid(c.kid),
          c.status,
          localTime(c.createdAt),
          localTime(c.expiresAt) ?? 'never',
          localTime(c.rotatedAt),
        ]),
      );
      notePage(page, 'credentials');
    });

  credentials
    .command('get')
    .description('show one credential (never its secret or private key)')
    .argument('<agent-id>')
    .argument('<credential-id>')
    .action(async (agentId: string, credentialId: string, _options: unknown, command: Command) => {
      const found = await managementApi(command).get<Credential>(path(agentId, credentialId));
      if (globals(command).json) return printJson(found);
      printCredential(found);
    });

  credentials
    .command('create')
    .description(
      'make a new credential for an agent; its other credentials keep working. A secret (the default), or with --type private_key_jwt a key ' +
        'pair the server generates (the private key is shown or written once) or, with --public-jwk, the public half of a key the agent holds',
    )
    .argument('<agent-id>')
    .option('--type <type>', 'secret or private_key_jwt (default secret; private_key_jwt with --public-jwk)', oneOf(TYPES))
    .option('--name <name>', "a label, unique among the agent's credentials")
    .option('--alg <alg>', 'a generated key pair: ES256 (default), RS256, PS256 or EdDSA', oneOf(ALGS))
    .option('--public-jwk <file>', "the agent's own public key, a JWK in this file (- for stdin): nothing private is made")
    .option('--expires-at <time>', 'when the credential stops working (ISO 8601); default never', instant)
    .option('--out <file>', 'write the secret or private key (PEM) to this new file (mode 0600) instead of printing it')
    .action(
      async (
        agentId: string,
        options: { type?: string; name?: string; alg?: string; publicJwk?: string; expiresAt?: string; out?: string },
        command: Command,
      ) => {
        const type = options.type ?? (options.publicJwk || options.alg ? 'private_key_jwt' : 'secret');
        if (type === 'secret' && (options.alg || options.publicJwk)) throw new UsageError('--alg and --public-jwk are for --type private_key_jwt');
        if (options.publicJwk && options.alg) throw new UsageError("--alg is for a generated pair; a --public-jwk key's alg is its own (or the JWK's alg)");
        if (options.publicJwk && options.out) throw new UsageError('with --public-jwk nothing private is made: there is nothing for --out');
        const body: Record<string, unknown> = { ...(type === 'secret' ? {} : { type }) };
        if (options.name !== undefined) body.name = options.name;
        if (options.alg) body.alg = options.alg;
        if (options.publicJwk) body.publicJwk = readJwk(options.publicJwk);
        if (options.expiresAt) body.expiresAt = options.expiresAt;
        const api = managementApi(command);
        const sink = new SecretSink(options.out);
        const created = await sink.around(() => api.request<CredentialWithSecret>('POST', path(agentId), { body }));
        printNewCredential(created, sink, globals(command).json);
      },
    );

  credentials
    .command('rotate')
    .description(
      "replace a credential's secret or key under the same credential id: a secret or a generated pair gets a new one (shown or " +
        'written once); a key the agent brought needs its new public key (--public-jwk)',
    )
    .argument('<agent-id>')
    .argument('<credential-id>')
    .option('--grace-period <seconds>', 'how long the replaced secret or key keeps working (0 to 604800; default 0)', integer(0, 604800))
    .option('--public-jwk <file>', "the new public key of a credential holding the agent's own key, a JWK in this file (- for stdin)")
    .option('--out <file>', 'write the new secret or private key (PEM) to this new file (mode 0600) instead of printing it')
    .action(async (agentId: string, credentialId: string, options: { gracePeriod?: number; publicJwk?: string; out?: string }, command: Command) => {
      if (options.publicJwk && options.out) throw new UsageError('with --public-jwk nothing private is made: there is nothing for --out');
      const body: Record<string, unknown> = {};
      if (options.gracePeriod !== undefined) body.gracePeriodSeconds = options.gracePeriod;
      if (options.publicJwk) body.publicJwk = readJwk(options.publicJwk);
      const api = managementApi(command);
      const sink = new SecretSink(options.out);
      const rotated = await sink.around(() => api.request<CredentialWithSecret>('POST', `${path(agentId, credentialId)}/rotate`, { body }));
      printNewCredential(rotated, sink, globals(command).json);
    });

  credentials
    .command('revoke')
    .description('revoke a credential: its secret or key stops working at once')
    .argument('<agent-id>')
    .argument('<credential-id>')
    .action(async (agentId: string, credentialId: string, _options: unknown, command: Command) => {
      await managementApi(command).request('DELETE', path(agentId, credentialId));
      note(`credential ${credentialId} revoked`);
    });
}
