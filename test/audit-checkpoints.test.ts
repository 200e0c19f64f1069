import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compactVerify, decodeProtectedHeader, importJWK } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api } from './helpers/api.ts';
import { eventually } from './helpers/eventually.ts';
import { createAgent, createOrg, managementToken, operatorToken } from './factories.ts';
import { checkpointHash, rootOf, type Checkpoint, type PresentedEvent } from '../src/audit/checkpoint-format.ts';
import { paceMs } from '../src/audit/checkpoints.repository.ts';
import { CHECKPOINT_CPU_SHARE } from '../src/audit/checkpointer.ts';

// The tamper-evident audit log (design/events.md): every chain's events are covered by signed
// checkpoints; a clean log verifies, and each kind of tampering by SQL (an UPDATE, a DELETE, an
// INSERT of an event, an UPDATE of a checkpoint) is detected and named, by GET /audit/verify and
// by the CLI's offline verifier, which is given the export, the checkpoints and the keys as files.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

let t: TestIdp;
let dir: string;

beforeAll(async () => {
  t = await startTestIdp({ env: { AUDIT_CHECKPOINT_SECONDS: '1' } });
  dir = mkdtempSync(join(tmpdir(), 'aidp-checkpoints-'));
});
afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A new org with a few events, once a checkpoint covers all of them. */
async function checkpointedOrg() {
  const org = await createOrg(t);
  for (const name of ['a', 'b', 'c']) await createAgent(t, org.token, { name });
  const events = (await api(t.url, org.token).get('/api/v1/audit?limit=200')).body.data as PresentedEvent[];
  const newest = events[0].occurredAt;
  let checkpoints: Checkpoint[] = [];
  await eventually(async () => {
    checkpoints = (await api(t.url, org.token).get('/api/v1/audit/checkpoints')).body.data;
    return checkpoints.some((c) => c.to > newest);
  });
  return { ...org, events, checkpoints };
}

const sql = (query: string, params: unknown[] = []) => t.idp.database.dataSource.query(query, params);
const verify = async (token: string) => (await api(t.url, token).get('/api/v1/audit/verify')).body;

/** Runs `agent-idp audit verify` offline on files made from what the API answered before verifying. */
async function offline(token: string, name: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const checkpoints = (await api(t.url, token).get('/api/v1/audit/checkpoints?limit=1000')).body;
  // As the README says: from a minute after retainedFrom (the retention start moves on meanwhile).
  const from = new Date(Date.parse(checkpoints.retainedFrom) + 60_000).toISOString();
  const exported = await api(t.url, token).get(`/api/v1/audit/export?from=${encodeURIComponent(from)}`);
  expect(exported.status).toBe(200);
  const kids = [...new Set((checkpoints.data as Checkpoint[]).map((c) => decodeProtectedHeader(c.signature).kid!))];
  const keys = await Promise.all(kids.map(async (kid) => (await api(t.url).get(`/api/v1/keys/public/${kid}`)).body.jwk));
  const files = { export: join(dir, `${name}.ndjson`), checkpoints: join(dir, `${name}.checkpoints.json`), jwks: join(dir, `${name}.jwks.json`) };
  writeFileSync(files.export, exported.text);
  writeFileSync(files.checkpoints, JSON.stringify(checkpoints));
  writeFileSync(files.jwks, JSON.stringify({ keys }));
  // No server and no profile: the CLI reads nothing but the files.
  return cli(['--json', 'audit', 'verify', '--export', files.export, '--checkpoints', files.checkpoints, '--jwks', files.jwks]);
}

/** The agent-idp command, as a process; `login`: the agent it acts as (AGENT_IDP_URL and its credentials), else none. */
async function cli(args: string[], login?: { clientId: string; clientSecret: string }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, AGENT_IDP_CONFIG: join(dir, 'no-config.json') };
  for (const v of ['AGENT_IDP_URL', 'AGENT_IDP_CLIENT_ID', 'AGENT_IDP_CLIENT_SECRET']) delete env[v];
  if (login) Object.assign(env, { AGENT_IDP_URL: t.url, AGENT_IDP_CLIENT_ID: login.clientId, AGENT_IDP_CLIENT_SECRET: login.clientSecret });
  const child = spawn(process.execPath, ['src/cli/index.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, stdout, stderr };
}

/** The checkpoint of the org's chain whose window holds the instant. */
const covering = (checkpoints: Checkpoint[], at: string) => checkpoints.find((c) => c.from <= at && at < c.to)!;

describe('audit checkpoints', () => {
  it('are signed per org chain with the IdP key (compact JWS with kid), link to the previous one, and commit to exactly the events of their window', async () => {
    const org = await checkpointedOrg();
    const chain = org.checkpoints;
    expect(chain.map((c) => c.seq)).toEqual(chain.map((_, i) => i + 1));
    expect(chain.every((c) => c.orgId === org.orgId)).toBe(true);
    expect(chain[0].previous).toBeNull();
    for (let i = 1; i < chain.length; i++) {
      expect(chain[i].previous).toBe(checkpointHash(chain[i - 1]));
      expect(chain[i].from).toBe(chain[i - 1].to);
    }
    // The signature verifies with the key GET /keys/public/{kid} gives, over the payload.
    const header = decodeProtectedHeader(chain[0].signature);
    expect(header).toMatchObject({ typ: 'aidp-audit-checkpoint', kid: expect.any(String) });
    const published = await api(t.url).get(`/api/v1/keys/public/${header.kid}`);
    const { payload } = await compactVerify(chain[0].signature, await importJWK(published.body.jwk, header.alg));
    expect(JSON.parse(new TextDecoder().decode(payload))).toMatchObject({ checkpointId: chain[0].checkpointId, root: chain[0].root, count: chain[0].count });
    // The root is the documented hash over the window's events, in chain order.
    const inWindow = org.events.filter((e) => e.occurredAt >= chain[0].from && e.occurredAt < chain[0].to).reverse();
    expect(chain[0].count).toBe(inWindow.length);
    expect(chain[0].root).toBe(rootOf(inWindow));
  });

  it('are read the same, chunk after chunk, when the reader is paced (the background checkpointer leaves requests most of the core)', async () => {
    const org = await checkpointedOrg();
    const repo = t.idp.container.repositories.checkpoints;
    const from = new Date(org.events[org.events.length - 1].occurredAt);
    const to = new Date(Date.parse(org.events[0].occurredAt) + 1);
    const read = async (options: { chunk?: number; share?: number }) => {
      const out: PresentedEvent[] = [];
      for await (const e of repo.events(org.orgId, from, to, options)) out.push(e);
      return out;
    };
    const whole = await read({});
    expect(whole.length).toBe(org.events.length);
    // Chunks of 2 with waits between them: the same events in the same order, so the same root.
    expect(await read({ chunk: 2, share: 0.2 })).toEqual(whole);
    expect(rootOf(await read({ chunk: 3, share: 0.5 }))).toBe(rootOf(whole));
    // Work of 10 ms at a share of 0.2 waits 40 ms; unpaced readers do not wait.
    expect(paceMs(10, CHECKPOINT_CPU_SHARE)).toBeCloseTo(40);
    expect(paceMs(10, 1)).toBe(0);
  });

  it('verify on a clean log, by the API and offline by the CLI', async () => {
    const org = await checkpointedOrg();
    const result = await verify(org.token);
    expect(result).toMatchObject({ verified: true, purged: [] });
    expect(result.checkpoints).toBeGreaterThanOrEqual(1);
    expect(result.events).toBeGreaterThanOrEqual(4);
    const files = await offline(org.token, 'clean');
    expect(files.code).toBe(0);
    expect(JSON.parse(files.stdout)).toMatchObject({ verified: true, events: result.events, checkpoints: result.checkpoints });
    // Online: the CLI fetches the checkpoints, the export and the keys itself.
    const from = org.checkpoints[0].from;
    const to = new Date().toISOString();
    const online = await cli(['audit', 'verify', '--from', from, '--to', to], org.admin);
    expect(online).toMatchObject({ code: 0, stdout: `verified: ${result.events} events in ${result.checkpoints} checkpoints\n` });
  });

  it.each([
    [
      'an UPDATE of one event',
      'event_changed',
      (org: { events: PresentedEvent[] }) => sql(`UPDATE audit_events SET details = '{"name":"forged"}' WHERE event_id = $1`, [org.events[1].eventId]),
    ],
    [
      'a DELETE of one event',
      'event_missing',
      (org: { events: PresentedEvent[] }) => sql(`DELETE FROM audit_events WHERE event_id = $1`, [org.events[1].eventId]),
    ],
    [
      'an INSERT of a forged event',
      'event_added',
      (org: { events: PresentedEvent[]; orgId: string }) =>
        sql(
          `INSERT INTO audit_events (event_id, occurred_at, org_id, actor_type, actor_id, action, target_type, target_id, outcome, details)
           SELECT gen_random_uuid(), occurred_at + interval '1 microsecond', org_id, 'system', NULL, 'agent.created', 'agent', NULL, 'success', '{}'
             FROM audit_events WHERE event_id = $1`,
          [org.events[1].eventId],
        ),
    ],
  ] as const)('detect and name %s, by the API and offline', async (_what, reason, tamper) => {
    const org = await checkpointedOrg();
    const target = covering(org.checkpoints, org.events[1].occurredAt);
    await tamper(org as never);
    const result = await verify(org.token);
    expect(result.verified).toBe(false);
    expect(result.problems).toEqual([{ checkpointId: target.checkpointId, reason, detail: expect.any(String) }]);
    const files = await offline(org.token, reason);
    expect(files.code).toBe(4);
    expect(JSON.parse(files.stdout).problems).toEqual([{ checkpointId: target.checkpointId, reason, detail: expect.any(String) }]);
    const online = await cli(['audit', 'verify'], org.admin);
    expect(online.code).toBe(4);
    expect(online.stdout).toContain(target.checkpointId);
    expect(online.stdout).toContain(reason);
    expect(online.stderr).toMatch(/the audit log does not verify: 1 problem$/m);
  });

  it('detect and name an UPDATE of a checkpoint (bad_signature), by the API and offline', async () => {
    const org = await checkpointedOrg();
    const target = org.checkpoints[0];
    await sql(`UPDATE audit_checkpoints SET count = count + 1 WHERE id = $1`, [target.checkpointId]);
    const result = await verify(org.token);
    expect(result.verified).toBe(false);
    expect(result.problems).toContainEqual({
      checkpointId: target.checkpointId,
      reason: 'bad_signature',
      detail: 'the checkpoint differs from what was signed',
    });
    const files = await offline(org.token, 'checkpoint');
    expect(files.code).toBe(4);
    expect(JSON.parse(files.stdout).problems).toContainEqual({
      checkpointId: target.checkpointId,
      reason: 'bad_signature',
      detail: 'the checkpoint differs from what was signed',
    });
  });

  it('detect a removed checkpoint as a broken chain', async () => {
    const org = await checkpointedOrg();
    for (const name of ['d', 'e']) await createAgent(t, org.token, { name });
    await eventually(async () => (await api(t.url, org.token).get('/api/v1/audit/checkpoints')).body.data.length >= org.checkpoints.length + 1);
    const chain: Checkpoint[] = (await api(t.url, org.token).get('/api/v1/audit/checkpoints')).body.data;
    await sql(`DELETE FROM audit_checkpoints WHERE id = $1`, [chain[0].checkpointId]);
    const result = await verify(org.token);
    expect(result.verified).toBe(false);
    expect(result.problems).toContainEqual({ checkpointId: chain[1].checkpointId, reason: 'chain_broken', detail: expect.any(String) });
  });

  it("keep one org out of another's checkpoints; operators also see the service's chain", async () => {
    const [a, b] = [await checkpointedOrg(), await checkpointedOrg()];
    const ofB = (await api(t.url, b.token).get('/api/v1/audit/checkpoints')).body.data as Checkpoint[];
    expect(ofB.every((c) => c.orgId === b.orgId)).toBe(true);
    expect(ofB.some((c) => a.checkpoints.some((x) => x.checkpointId === c.checkpointId))).toBe(false);
    // Tampering in a's chain is not b's problem, and b's verify does not name a's checkpoints.
    await sql(`DELETE FROM audit_events WHERE event_id = $1`, [a.events[1].eventId]);
    expect((await verify(b.token)).verified).toBe(true);
    const operator = await operatorToken(t);
    const service = (await api(t.url, operator).get('/api/v1/audit/checkpoints?limit=1000')).body.data as Checkpoint[];
    expect(service.some((c) => c.orgId === a.orgId)).toBe(false);
    expect(service.every((c) => c.orgId === null || c.orgId !== b.orgId)).toBe(true);
  });

  it('stay verifiable after their signing key is removed: GET /keys/public/{kid} keeps answering for it', async () => {
    const org = await checkpointedOrg();
    const kid = decodeProtectedHeader(org.checkpoints[0].signature).kid!;
    const before = (await api(t.url).get(`/api/v1/keys/public/${kid}`)).body;
    // The key stops signing, then leaves signing_keys as the maintenance removes retired keys.
    const operator = await operatorToken(t);
    expect((await api(t.url, operator).post('/api/v1/keys/rotate')).status).toBe(200);
    await t.changeBySql(`DELETE FROM signing_keys WHERE kid = $1`, [kid]);
    // Tokens it signed went with it: new ones.
    const listed = await api(t.url, await operatorToken(t)).get('/api/v1/keys');
    expect(listed.body.data.map((k: { kid: string }) => k.kid)).not.toContain(kid);
    const token = await managementToken(t, org.admin.clientId, org.admin.clientSecret);
    const after = await api(t.url).get(`/api/v1/keys/public/${kid}`);
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before);
    expect(await verify(token)).toMatchObject({ verified: true });
    const files = await offline(token, 'removed-key');
    expect(files.code).toBe(0);
  });

  it('refuse bad queries with a 400 and need audit:read', async () => {
    const org = await createOrg(t);
    expect((await api(t.url, org.token).get('/api/v1/audit/checkpoints?from=yesterday')).status).toBe(400);
    expect((await api(t.url, org.token).get('/api/v1/audit/checkpoints?cursor=nope')).status).toBe(400);
    expect((await api(t.url, org.token).get('/api/v1/audit/verify?to=2020-01-01T00:00:00Z&from=2021-01-01T00:00:00Z')).status).toBe(400);
    expect((await api(t.url, org.token).get('/api/v1/audit/verify?extra=1')).status).toBe(400);
  });
});
