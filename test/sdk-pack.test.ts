import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { agentWithSecret, createCredential, createOrg } from './factories.ts';

// What a user gets: `npm pack -w sdk`, installed into an empty project (jose from the registry),
// imported by plain JavaScript on the oldest Node the SDK claims (the machine's Node 20 when it
// has one) and used against a real server.

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
// The pinned Node runs the tests; /usr/bin/node, when there, is the system's (20 on CI machines).
const NODE = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;
const AUDIENCE = 'https://orders.example';

const SCRIPT = `
import { AgentTokenClient, createVerifier, TokenError } from '@agent-idp/sdk';
const { IDP, CLIENT_ID, CLIENT_SECRET, PRIVATE_KEY_PEM, AUDIENCE } = process.env;
const client = new AgentTokenClient({ issuer: IDP, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
const token = await client.getToken();
const verifier = createVerifier({ issuer: IDP, audience: AUDIENCE });
const claims = await verifier.verify(token.accessToken);
const refused = await createVerifier({ issuer: IDP, audience: 'https://elsewhere.example' }).verify(token.accessToken).catch((err) => err);
// private_key_jwt and DPoP: WebCrypto as the oldest Node has it.
const bound = new AgentTokenClient({ issuer: IDP, clientId: CLIENT_ID, privateKey: PRIVATE_KEY_PEM, dpop: true });
const url = AUDIENCE + '/orders';
const headers = await bound.authorizationHeaders('GET', url);
const boundClaims = await verifier.verify(headers.authorization.slice('DPoP '.length), { method: 'GET', url, headers });
console.log(JSON.stringify({
  node: process.version,
  tokenType: token.tokenType,
  sub: claims.sub,
  refused: refused instanceof TokenError && refused.code,
  boundType: (await bound.getToken()).tokenType,
  boundJkt: boundClaims.cnf.jkt === (await bound.dpopThumbprint()),
}));
`;

let t: TestIdp;
let dir: string;

beforeAll(async () => {
  t = await startTestIdp();
  dir = mkdtempSync(join(tmpdir(), 'aidp-sdk-pack-'));
});
afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

it('npm pack -w sdk gives a tarball that installs into an empty project and gets and verifies a token', async () => {
  await run('npm', ['pack', '-w', 'sdk', '--pack-destination', dir, '--silent'], { cwd: ROOT, timeout: 60_000 });
  const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'));
  expect(tarball).toMatch(/^agent-idp-sdk-\d+\.\d+\.\d+\.tgz$/);

  const project = join(dir, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sdk-user', private: true, type: 'module' }));
  writeFileSync(join(project, 'main.mjs'), SCRIPT);
  await run('npm', ['install', '--no-audit', '--no-fund', '--silent', join(dir, tarball!)], { cwd: project, timeout: 90_000 });

  const org = await createOrg(t);
  const agent = await agentWithSecret(t, org.token, { audiences: [AUDIENCE] });
  const key = await createCredential(t, org.token, agent.clientId, { type: 'private_key_jwt', alg: 'ES256' });
  const { stdout } = await run(NODE, ['main.mjs'], {
    cwd: project,
    timeout: 30_000,
    env: {
      PATH: process.env.PATH,
      IDP: t.url,
      CLIENT_ID: agent.clientId,
      CLIENT_SECRET: agent.clientSecret,
      PRIVATE_KEY_PEM: (key as unknown as { privateKeyPem: string }).privateKeyPem,
      AUDIENCE,
    },
  });
  const result = JSON.parse(stdout);
  expect(result).toEqual({
    node: expect.stringMatching(/^v\d+\./),
    tokenType: 'Bearer',
    sub: agent.clientId,
    refused: 'invalid_token',
    boundType: 'DPoP',
    boundJkt: true,
  });
  expect(Number(result.node.slice(1).split('.')[0])).toBeGreaterThanOrEqual(20);
}, 180_000);
