import bcrypt from 'bcrypt';
import { jest } from '@jest/globals';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { eventually } from './helpers/eventually.ts';
import { secretDigest as digestOf } from '../src/credentials/secrets.ts';
import { agentWithSecret, createOrg, requestToken } from './factories.ts';

// The secret memory at /token (src/credentials/secret-memory.ts, CredentialsService.verifySecret):
// how many bcrypt compares a burst of requests and an agent asking in a loop cost. A bcrypt
// compare takes tens of milliseconds on the thread pool; when every request in flight paid one
// as its secret's entry ran out, /token stopped answering for seconds (the bench's `steady`
// scenario found it: no answer for two seconds at 60 s, a minute after the secret was first checked).

let now = Date.parse('2026-12-01T12:00:00Z');
let t: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;
const compare = jest.spyOn(bcrypt, 'compare');

beforeAll(async () => {
  t = await startTestIdp({ clock: () => now });
  org = await createOrg(t);
});
afterAll(() => t.close());

/** bcrypt compares of this secret's agent: its credential's hash is the second argument. */
async function comparesOf(agentId: string): Promise<number> {
  const [row] = await t.idp.database.dataSource.query('SELECT secret_hash FROM credentials WHERE agent_id = $1', [agentId]);
  return compare.mock.calls.filter((call) => call[1] === row.secret_hash).length;
}

describe('the secret memory at /token', () => {
  it('checks a secret not yet remembered once for a burst of requests', async () => {
    const a = await agentWithSecret(t, org.token);
    const answers = await Promise.all(Array.from({ length: 16 }, () => requestToken(t, a.clientId, a.clientSecret)));
    expect(answers.map((r) => r.status)).toEqual(Array(16).fill(200));
    // One compare, whichever request came first; the others waited for its answer.
    expect(await comparesOf(a.clientId)).toBe(1);
  });

  it('shares no answer between different secrets: a wrong one in the same burst is refused', async () => {
    const a = await agentWithSecret(t, org.token);
    const wrong = a.clientSecret.slice(0, -4) + (a.clientSecret.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const answers = await Promise.all([...Array(4)].map((_, i) => requestToken(t, a.clientId, i % 2 ? wrong : a.clientSecret)));
    expect(answers.map((r) => r.status)).toEqual([200, 401, 200, 401]);
    // At least one compare each (the two wrong ones share one only if they overlapped).
    expect(await comparesOf(a.clientId)).toBeGreaterThanOrEqual(2);
  });

  it('checks a secret in use again before its entry runs out, so that the loop never waits for bcrypt', async () => {
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    expect(await comparesOf(a.clientId)).toBe(1);

    // 40 s later: remembered, nothing to do.
    now += 40_000;
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    expect(await comparesOf(a.clientId)).toBe(1);

    // 50 s: in the entry's last quarter; answered from memory, one compare starts in the background.
    now += 10_000;
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    await eventually(async () => (await comparesOf(a.clientId)) === 2);
    // The refreshed entry is remembered anew (a full minute from now).
    await eventually(() => !t.idp.container.credentials.memory.refreshDue(digestOf(a.clientSecret)));

    // 70 s: past the first entry's minute, within the refreshed one: still no compare.
    now += 20_000;
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    expect(await comparesOf(a.clientId)).toBe(2);
  });

  it('lets an entry no request uses run out: a secret stays remembered at most SECRET_MEMORY_SECONDS after a compare', async () => {
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    now += 61_000;
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    expect(await comparesOf(a.clientId)).toBe(2);
  });

  it('refreshes nothing once the credential is revoked: the revoked secret is refused at once', async () => {
    const a = await agentWithSecret(t, org.token);
    expect((await requestToken(t, a.clientId, a.clientSecret)).status).toBe(200);
    now += 50_000;
    await t.changeBySql(`UPDATE credentials SET status = 'revoked', revoked_at = now() WHERE agent_id = $1`, [a.clientId]);
    const res = await requestToken(t, a.clientId, a.clientSecret);
    expect(res.status).toBe(401);
    expect(await comparesOf(a.clientId)).toBe(1);
  });
});
