import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';

// The agent-idp command as an operator runs it: a real process against a real server, with its
// profiles in a file of its own (AGENT_IDP_CONFIG).

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let idp: TestIdp;
let dir: string;
let config: string;

function cli(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, AGENT_IDP_CONFIG: config, ...options.env };
  for (const name of ['AGENT_IDP_URL', 'AGENT_IDP_CLIENT_ID', 'AGENT_IDP_CLIENT_SECRET']) if (!options.env?.[name]) delete env[name];
  const child = spawn(process.execPath, ['src/cli/index.ts', ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(options.stdin ?? '');
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** What the API itself answers, for comparing with --json. */
async function api(path: string): Promise<unknown> {
  const { clientId, clientSecret } = idp.operator;
  const tokenResponse = await fetch(`${idp.url}/token`, {
    method: 'POST',
    headers: { authorization: 'Basic ' + Buffer.from(`${clientId}:${clientSecret}`).toString('base64') },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${idp.url}/api/v1` }),
  });
  const { access_token } = (await tokenResponse.json()) as { access_token: string };
  const response = await fetch(`${idp.url}/api/v1${path}`, { headers: { authorization: `Bearer ${access_token}` } });
  return response.json();
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  idp = await startTestIdp();
  dir = mkdtempSync(join(tmpdir(), 'aidp-cli-'));
  config = join(dir, 'agent-idp', 'config.json');
  const login = await cli(['login', '--url', idp.url, '--client-id', idp.operator.clientId, '--client-secret-stdin'], {
    stdin: idp.operator.clientSecret + '\n',
  });
  expect(login).toMatchObject({ code: 0, stdout: '' });
});

afterAll(async () => {
  await idp?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('agent-idp login, whoami, logout', () => {
  it('login wrote the profile to AGENT_IDP_CONFIG, mode 0600', () => {
    expect(statSync(config).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(readFileSync(config, 'utf8'));
    expect(saved.profiles.default).toEqual({ url: idp.url, clientId: idp.operator.clientId, clientSecret: idp.operator.clientSecret });
  });

  it('login refuses a wrong secret (exit 1) and saves nothing', async () => {
    const run = await cli(['login', '--profile', 'wrong', '--url', idp.url, '--client-id', idp.operator.clientId, '--client-secret-stdin'], {
      stdin: 'not-the-secret',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('invalid_client');
    expect(JSON.parse(readFileSync(config, 'utf8')).profiles.wrong).toBeUndefined();
  });

  it('whoami names the agent, its org and scopes', async () => {
    const run = await cli(['whoami']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(idp.operator.clientId);
    expect(run.stdout).toMatch(/scopes\s+agents:read agents:write/);
    const json = JSON.parse((await cli(['whoami', '--json'])).stdout);
    expect(json).toMatchObject({ active: true, sub: idp.operator.clientId });
  });

  it('the environment overrides the profile: with all three set, no file is needed', async () => {
    const run = await cli(['whoami', '--json'], {
      env: {
        AGENT_IDP_CONFIG: join(dir, 'none.json'),
        AGENT_IDP_URL: idp.url,
        AGENT_IDP_CLIENT_ID: idp.operator.clientId,
        AGENT_IDP_CLIENT_SECRET: idp.operator.clientSecret,
      },
    });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).sub).toBe(idp.operator.clientId);
  });

  it('logout removes the profile; then the CLI is not logged in (exit 3)', async () => {
    const other = join(dir, 'other.json');
    writeFileSync(other, readFileSync(config));
    expect((await cli(['logout'], { env: { AGENT_IDP_CONFIG: other } })).code).toBe(0);
    const run = await cli(['agents', 'list'], { env: { AGENT_IDP_CONFIG: other } });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('not logged in');
  });
});

describe('agent-idp agents and credentials', () => {
  let agentId: string;

  beforeAll(async () => {
    const run = await cli(['agents', 'create', '--name', 'cli-bot', '--scope', 'orders:read', '--audience', 'https://orders.example', '--json']);
    expect(run.code).toBe(0);
    agentId = JSON.parse(run.stdout).agentId;
  });

  it('--json prints exactly the API answer, one document', async () => {
    const get = await cli(['agents', 'get', agentId, '--json']);
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout)).toEqual(await api(`/agents/${agentId}`));
    const list = await cli(['--json', 'agents', 'list', '--limit', '100']);
    expect(JSON.parse(list.stdout)).toEqual(await api('/agents?limit=100'));
  });

  it('lists and shows agents as tables for people', async () => {
    const list = await cli(['agents', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^AGENT ID\s+NAME\s+STATUS\s+SCOPES\s+CREATED$/);
    expect(list.stdout).toMatch(new RegExp(`${agentId}\\s+cli-bot\\s+active\\s+orders:read`));
    const get = await cli(['agents', 'get', agentId]);
    expect(get.stdout).toMatch(/audiences\s+https:\/\/orders.example/);
  });

  it('suspends and reactivates', async () => {
    expect(JSON.parse((await cli(['agents', 'suspend', agentId, '--json'])).stdout).status).toBe('suspended');
    expect(JSON.parse((await cli(['agents', 'reactivate', agentId, '--json'])).stdout).status).toBe('active');
  });

  it('credentials create --out writes the secret to a new 0600 file, never to stdout', async () => {
    const out = join(dir, 'cli-bot.secret');
    const run = await cli(['credentials', 'create', agentId, '--out', out]);
    expect(run.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const secret = readFileSync(out, 'utf8').trim();
    expect(secret).toMatch(/^aidp_cs_/);
    expect(run.stdout).not.toContain('aidp_cs_');
    // The secret works: the agent gets a token with it.
    const token = await cli(['token', 'get'], { env: { AGENT_IDP_URL: idp.url, AGENT_IDP_CLIENT_ID: agentId, AGENT_IDP_CLIENT_SECRET: secret } });
    expect(token.code).toBe(0);
    // --out never overwrites, and then nothing is created on the server.
    const before = (JSON.parse((await cli(['credentials', 'list', agentId, '--json'])).stdout) as { total: number }).total;
    const again = await cli(['credentials', 'create', agentId, '--out', out]);
    expect(again.code).toBe(2);
    expect(readFileSync(out, 'utf8').trim()).toBe(secret);
    expect(JSON.parse((await cli(['credentials', 'list', agentId, '--json'])).stdout).total).toBe(before);
  });

  it('credentials create without --out prints the secret once, with a warning on stderr', async () => {
    const run = await cli(['credentials', 'create', agentId, '--json']);
    expect(run.code).toBe(0);
    const created = JSON.parse(run.stdout);
    expect(created.clientSecret).toMatch(/^aidp_cs_/);
    expect(run.stderr).toContain('shown once');
    const get = await cli(['credentials', 'get', agentId, created.credentialId, '--json']);
    const { clientSecret: _, ...withoutSecret } = created;
    expect(JSON.parse(get.stdout)).toEqual(withoutSecret);
  });

  it('credentials create --name labels a secret; get shows one credential as the API does', async () => {
    const run = await cli(['credentials', 'create', agentId, '--name', 'ci-secret', '--json']);
    expect(run.code).toBe(0);
    const created = JSON.parse(run.stdout);
    expect(created).toMatchObject({ type: 'secret', name: 'ci-secret' });
    const get = await cli(['credentials', 'get', agentId, created.credentialId]);
    expect(get.stdout).toMatch(/type\s+secret\n/);
    expect(get.stdout).toMatch(/name\s+ci-secret\n/);
    expect(JSON.parse((await cli(['credentials', 'get', agentId, created.credentialId, '--json'])).stdout)).toEqual(
      await api(`/agents/${agentId}/credentials/${created.credentialId}`),
    );
  });

  it('decommission without --yes and without a terminal changes nothing (exit 2)', async () => {
    expect((await cli(['agents', 'decommission', agentId])).code).toBe(2);
    expect(JSON.parse((await cli(['agents', 'get', agentId, '--json'])).stdout).status).toBe('active');
  });
});

describe('agent-idp key credentials (private_key_jwt) and requireDpop', () => {
  let agentId: string;

  beforeAll(async () => {
    const run = await cli(['agents', 'create', '--name', 'key-bot', '--scope', 'orders:read', '--audience', 'https://orders.example', '--json']);
    expect(run.code).toBe(0);
    agentId = JSON.parse(run.stdout).agentId;
  });

  const tokenWithKey = (file: string) => cli(['token', 'get', '--client-id', agentId, '--private-key', file, '--json']);

  it('create --type private_key_jwt --out writes the generated private key (PEM) to a new 0600 file, and token get --private-key uses it', async () => {
    const out = join(dir, 'key-bot.pem');
    const run = await cli(['credentials', 'create', agentId, '--type', 'private_key_jwt', '--name', 'signer', '--out', out, '--json']);
    expect(run.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(out, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    expect(run.stdout).not.toContain('PRIVATE KEY');
    const created = JSON.parse(run.stdout);
    expect(created).toMatchObject({ type: 'private_key_jwt', name: 'signer', alg: 'ES256', kid: expect.any(String), publicJwk: { kty: 'EC' } });
    expect(created).not.toHaveProperty('privateKeyPem');
    expect(created).not.toHaveProperty('privateJwk');
    expect(run.stderr).toContain(`the private key was written to ${out} (mode 0600)`);

    const token = await tokenWithKey(out);
    expect(token.code).toBe(0);
    const decoded = JSON.parse((await cli(['token', 'decode', JSON.parse(token.stdout).access_token, '--json'])).stdout);
    expect(decoded.payload).toMatchObject({ sub: agentId, scope: 'orders:read' });
  });

  it('create without --out prints the private key once, after the record, with a warning; --alg picks the algorithm', async () => {
    const run = await cli(['credentials', 'create', agentId, '--type', 'private_key_jwt', '--alg', 'EdDSA']);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('the private key below is shown once');
    expect(run.stdout).toMatch(/type\s+private_key_jwt\n/);
    expect(run.stdout).toMatch(/alg\s+EdDSA\n/);
    expect(run.stdout).toMatch(/\n-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    const pem = join(dir, 'eddsa.pem');
    writeFileSync(pem, run.stdout.slice(run.stdout.indexOf('-----BEGIN')), { mode: 0o600 });
    expect((await tokenWithKey(pem)).code).toBe(0);

    const json = JSON.parse(
      (await cli(['credentials', 'create', agentId, '--type', 'private_key_jwt', '--alg', 'RS256', '--expires-at', '2030-01-01', '--json'])).stdout,
    );
    expect(json).toMatchObject({
      alg: 'RS256',
      expiresAt: '2030-01-01T00:00:00.000Z',
      privateKeyPem: expect.stringContaining('BEGIN PRIVATE KEY'),
      privateJwk: { kty: 'RSA' },
    });
    // get shows the key's kid and alg, never anything private.
    const get = await cli(['credentials', 'get', agentId, json.credentialId]);
    expect(get.stdout).toMatch(new RegExp(`kid\\s+${json.kid}\n`));
    expect(get.stdout).toMatch(/alg\s+RS256\n/);
    expect(get.stdout).not.toContain('PRIVATE KEY');
  });

  it("create --public-jwk registers the agent's own key: nothing private exists, so --out is refused", async () => {
    const own = await generateKeyPair('ES256', { extractable: true });
    const jwkFile = join(dir, 'own.jwk.json');
    writeFileSync(jwkFile, JSON.stringify(await exportJWK(own.publicKey)));
    const refused = await cli(['credentials', 'create', agentId, '--public-jwk', jwkFile, '--out', join(dir, 'nothing.pem')]);
    expect(refused.code).toBe(2);
    expect(existsSync(join(dir, 'nothing.pem'))).toBe(false);

    const run = await cli(['credentials', 'create', agentId, '--public-jwk', jwkFile, '--json']);
    expect(run.code).toBe(0);
    expect(run.stderr).not.toContain('shown once');
    const created = JSON.parse(run.stdout);
    expect(created).toMatchObject({ type: 'private_key_jwt', kid: await calculateJwkThumbprint(await exportJWK(own.publicKey)) });
    expect(Object.keys(created)).not.toEqual(expect.arrayContaining(['privateKeyPem']));

    const pem = join(dir, 'own.pem');
    writeFileSync(pem, await exportPKCS8(own.privateKey), { mode: 0o600 });
    expect((await tokenWithKey(pem)).code).toBe(0);

    // Rotating an agent-supplied key takes its new public key.
    const next = await generateKeyPair('ES256', { extractable: true });
    const nextFile = join(dir, 'next.jwk.json');
    writeFileSync(nextFile, JSON.stringify(await exportJWK(next.publicKey)));
    const rotated = await cli(['credentials', 'rotate', agentId, created.credentialId, '--public-jwk', nextFile, '--json']);
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout).kid).toBe(await calculateJwkThumbprint(await exportJWK(next.publicKey)));
    const nextPem = join(dir, 'next.pem');
    writeFileSync(nextPem, await exportPKCS8(next.privateKey), { mode: 0o600 });
    expect((await tokenWithKey(nextPem)).code).toBe(0);
    const old = await tokenWithKey(pem);
    expect(old.code).toBe(1);
    expect(old.stderr).toContain('invalid_client');
  });

  it('rotate of a generated pair writes the new private key to --out; the old key stops working (no grace period)', async () => {
    const first = join(dir, 'rotating-1.pem');
    const created = JSON.parse((await cli(['credentials', 'create', agentId, '--type', 'private_key_jwt', '--out', first, '--json'])).stdout);
    const second = join(dir, 'rotating-2.pem');
    const run = await cli(['credentials', 'rotate', agentId, created.credentialId, '--out', second, '--json']);
    expect(run.code).toBe(0);
    const rotated = JSON.parse(run.stdout);
    expect(rotated.credentialId).toBe(created.credentialId);
    expect(rotated.kid).not.toBe(created.kid);
    expect(rotated).not.toHaveProperty('privateKeyPem');
    expect(statSync(second).mode & 0o777).toBe(0o600);
    expect(readFileSync(second, 'utf8')).not.toBe(readFileSync(first, 'utf8'));
    expect((await tokenWithKey(second)).code).toBe(0);
    expect((await tokenWithKey(first)).code).toBe(1);
  });

  it('list shows TYPE, NAME and KID columns', async () => {
    expect((await cli(['credentials', 'create', agentId, '--type', 'private_key_jwt', '--name', 'listed-key', '--out', join(dir, 'listed.pem')])).code).toBe(0);
    const list = await cli(['credentials', 'list', agentId, '--limit', '100']);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^CREDENTIAL ID\s+TYPE\s+NAME\s+KID\s+STATUS\s+CREATED\s+EXPIRES\s+ROTATED$/);
    expect(list.stdout).toMatch(/\s+private_key_jwt\s+listed-key\s+[A-Za-z0-9_-]{12}…\s+active\s/);
    expect(list.stdout).not.toContain('PRIVATE KEY');
  });

  it('--alg and --public-jwk are refused for secrets; --alg only takes the four algorithms', async () => {
    expect((await cli(['credentials', 'create', agentId, '--type', 'secret', '--alg', 'ES256'])).code).toBe(2);
    const bad = await cli(['credentials', 'create', agentId, '--type', 'private_key_jwt', '--alg', 'HS256']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('ES256, RS256, PS256, EdDSA');
    const help = await cli(['credentials', '--help']);
    expect(help.stdout).toContain('private_key_jwt');
    expect(help.stdout).not.toContain('not supported');
  });

  it('agents create --require-dpop, get shows it, update --no-require-dpop clears it', async () => {
    const created = await cli(['agents', 'create', '--name', 'dpop-bot', '--require-dpop', '--json']);
    expect(created.code).toBe(0);
    const agent = JSON.parse(created.stdout);
    expect(agent.requireDpop).toBe(true);
    expect((await cli(['agents', 'get', agent.agentId])).stdout).toMatch(/require dpop\s+yes\n/);
    const updated = await cli(['agents', 'update', agent.agentId, '--no-require-dpop', '--json']);
    expect(JSON.parse(updated.stdout).requireDpop).toBe(false);
    expect(JSON.parse((await cli(['agents', 'get', agentId, '--json'])).stdout).requireDpop).toBe(false);
  });

  it('agents create --may-act, get shows it, update --may-act replaces the list, an unknown agent is refused', async () => {
    const actor = JSON.parse((await cli(['agents', 'create', '--name', 'orchestrator', '--json'])).stdout);
    const other = JSON.parse((await cli(['agents', 'create', '--name', 'orchestrator-2', '--json'])).stdout);
    const created = await cli(['agents', 'create', '--name', 'delegating-bot', '--may-act', actor.agentId, '--json']);
    expect(created.code).toBe(0);
    const agent = JSON.parse(created.stdout);
    expect(agent.mayAct).toEqual([actor.agentId]);
    expect((await cli(['agents', 'get', agent.agentId])).stdout).toMatch(new RegExp(`may act for it\\s+${actor.agentId}`));
    const updated = await cli(['agents', 'update', agent.agentId, '--may-act', other.agentId, '--json']);
    expect(JSON.parse(updated.stdout).mayAct).toEqual([other.agentId]);
    const refused = await cli(['agents', 'update', agent.agentId, '--may-act', '00000000-0000-4000-8000-000000000000']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('mayAct');
  });

  it('agents create --federate maps external identities (jwt-bearer), get shows them, update --no-federation removes them', async () => {
    const issuer = 'https://token.actions.githubusercontent.com';
    const subject = `repo:acme/app:ref:refs/heads/main:${randomUUID()}`;
    const created = await cli(['agents', 'create', '--name', 'ci-bot', '--federate', `${issuer} ${subject}`, '--json']);
    expect(created.code).toBe(0);
    const agent = JSON.parse(created.stdout);
    expect(agent.federatedIdentities).toEqual([{ issuer, subject, audience: null }]);
    expect((await cli(['agents', 'get', agent.agentId])).stdout).toContain(`${issuer} ${subject}`);
    expect((await cli(['agents', 'create', '--name', 'x', '--federate', issuer])).code).toBe(2);
    const cleared = await cli(['agents', 'update', agent.agentId, '--no-federation', '--json']);
    expect(JSON.parse(cleared.stdout).federatedIdentities).toEqual([]);
  });
});

describe('agent-idp exit codes', () => {
  it('a refusal by the server exits 1, with its detail and code on stderr', async () => {
    const run = await cli(['agents', 'get', '00000000-0000-4000-8000-000000000000']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/not found \(code: not_found, HTTP 404/);
    expect(run.stdout).toBe('');
  });

  it('an unknown command or a missing argument exits 2', async () => {
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['agents', 'get'])).code).toBe(2);
    expect((await cli(['agents', 'list', '--limit', 'many'])).code).toBe(2);
  });

  it('--help exits 0 on the program and on every command', async () => {
    for (const args of [['--help'], ['agents', '--help'], ['credentials', 'create', '--help'], ['audit', 'export', '--help'], ['token', 'decode', '--help']]) {
      const run = await cli(args);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('Usage: agent-idp');
    }
  });

  it('a server that cannot be reached exits 3', async () => {
    const run = await cli(['agents', 'list'], { env: { AGENT_IDP_URL: `http://127.0.0.1:${await closedPort()}` } });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('cannot reach');
  });

  it('the set-up commands still work without a server', async () => {
    const run = await cli(['generate-kek']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^KEY_ENCRYPTION_KEY=[A-Za-z0-9+/]{43}=\n$/);
  });
});

describe('agent-idp token and audit', () => {
  it('token get prints a bare JWT; token decode shows it, saying it verified nothing', async () => {
    const got = await cli(['token', 'get']);
    expect(got.code).toBe(0);
    const jwt = got.stdout.trim();
    expect(jwt.split('.')).toHaveLength(3);
    const decoded = await cli(['token', 'decode', jwt, '--json']);
    expect(decoded.code).toBe(0);
    expect(JSON.parse(decoded.stdout)).toMatchObject({ header: { typ: 'at+jwt' }, payload: { sub: idp.operator.clientId, iss: idp.url } });
    expect(decoded.stderr).toContain('NOT verified');
    const introspected = await cli(['token', 'introspect', '-', '--json'], { stdin: jwt });
    expect(JSON.parse(introspected.stdout)).toMatchObject({ active: true, sub: idp.operator.clientId });
  });

  it('audit list shows what the CLI did', async () => {
    await cli(['agents', 'create', '--name', 'audited-bot']);
    const run = await cli(['audit', 'list', '--action', 'agent.created', '--json']);
    expect(run.code).toBe(0);
    const page = JSON.parse(run.stdout) as { data: { action: string; actor: { id: string } }[] };
    expect(page.data.length).toBeGreaterThan(0);
    expect(page.data.every((e) => e.action === 'agent.created' && e.actor.id === idp.operator.clientId)).toBe(true);
    const table = await cli(['audit', 'list', '--action', 'agent.created', '--all']);
    expect(table.stdout).toMatch(/agent\.created\s+success/);
  });

  it('audit export writes NDJSON to a new file and reports events/s on stderr', async () => {
    const out = join(dir, 'audit.ndjson');
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    const run = await cli(['audit', 'export', '--from', from, '--to', to, '--out', out]);
    expect(run.code).toBe(0);
    expect(existsSync(out)).toBe(true);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(JSON.parse(line)).toHaveProperty('eventId');
    expect(run.stderr).toMatch(new RegExp(`exported ${lines.length} events, \\d+ events/s`));
  });
});
