import { randomBytes, randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { freshDatabase, type TestDatabase } from './helpers/database.ts';
import { api } from './helpers/api.ts';
import { agentWithSecret, createOrg, managementToken, requestToken } from './factories.ts';
import { createDataSource } from '../src/db/data-source.ts';
import { migrations } from '../migrations/index.ts';

// The management API's audience, `<issuer>/api/v1`, is implied by the management scopes and never
// stored, so that moving the service to another PUBLIC_URL locks no admin out.

const TRYING_IT_OUT = 'http://localhost:3000';
const REAL_DOMAIN = 'https://idp.example.com';

const audOf = (token: string) => decodeJwt(token).aud;

/** Runs `work` on a data source of its own (the app on `db` must be closed: embedded serves one connection). */
async function withDataSource<T>(db: TestDatabase, work: (ds: ReturnType<typeof createDataSource>) => Promise<T>): Promise<T> {
  const ds = createDataSource(db.url, 1);
  await ds.initialize();
  try {
    return await work(ds);
  } finally {
    await ds.destroy();
  }
}

const UNSTORE = 'UnstoreManagementAudience1763769600700';

/** Undoes the migrations from the last one back to and including UnstoreManagementAudience (the database as before it). */
async function undoThroughUnstore(ds: ReturnType<typeof createDataSource>): Promise<void> {
  const index = migrations.findIndex((m) => m.name === UNSTORE);
  expect(index).toBeGreaterThanOrEqual(0);
  for (let i = migrations.length; i > index; i--) await ds.undoLastMigration({ transaction: 'each' });
}

describe('a restart on another PUBLIC_URL', () => {
  it('keeps the operator and an org admin of a database the old code wrote: tokens for <new issuer>/api/v1 with and without resource; the old audience refused', async () => {
    const db = await freshDatabase();
    const kek = randomBytes(32).toString('base64');
    try {
      const first = await startTestIdp({ db, env: { KEY_ENCRYPTION_KEY: kek, PUBLIC_URL: TRYING_IT_OUT } });
      const operator = first.operator;
      // Requests go to the test server's address; audiences name the issuer, PUBLIC_URL.
      const oldToken = await requestToken(first, operator.clientId, operator.clientSecret, { resource: `${TRYING_IT_OUT}/api/v1` });
      expect(audOf(oldToken.body.access_token)).toBe(`${TRYING_IT_OUT}/api/v1`);
      const org = await api(first.url, oldToken.body.access_token).post('/api/v1/orgs', { body: { name: 'acme' } });
      expect(org.status).toBe(201);
      const admin = org.body.admin as { clientId: string; clientSecret: string };
      await first.close();

      // The database as the code before this fix left it: the management audience of the old
      // PUBLIC_URL stored in both agents, and the migration that removes it not yet run.
      await withDataSource(db, async (ds) => {
        await undoThroughUnstore(ds);
        expect(await ds.showMigrations()).toBe(true);
        await ds.query(`UPDATE agents SET audiences = ARRAY[$1] WHERE id = ANY($2::uuid[])`, [`${TRYING_IT_OUT}/api/v1`, [operator.clientId, admin.clientId]]);
      });

      const second = await startTestIdp({
        db,
        env: {
          KEY_ENCRYPTION_KEY: kek,
          PUBLIC_URL: REAL_DOMAIN,
          BOOTSTRAP_ADMIN_CLIENT_ID: operator.clientId,
          BOOTSTRAP_ADMIN_CLIENT_SECRET: operator.clientSecret,
        },
      });
      try {
        const stored = await second.idp.database.dataSource.query(`SELECT id, audiences FROM agents WHERE id = ANY($1::uuid[]) ORDER BY id`, [
          [operator.clientId, admin.clientId],
        ]);
        expect(stored.map((row: { audiences: string[] }) => row.audiences)).toEqual([[], []]);

        for (const [who, agent] of [
          ['operator', operator],
          ['org admin', admin],
        ] as const) {
          const withResource = await requestToken(second, agent.clientId, agent.clientSecret, { resource: `${REAL_DOMAIN}/api/v1` });
          const withoutResource = await requestToken(second, agent.clientId, agent.clientSecret);
          expect([who, withResource.status, withoutResource.status]).toEqual([who, 200, 200]);
          for (const token of [withResource.body.access_token, withoutResource.body.access_token]) {
            expect([who, audOf(token)]).toEqual([who, `${REAL_DOMAIN}/api/v1`]);
            expect([who, (await api(second.url, token).get('/api/v1/agents')).status]).toEqual([who, 200]);
          }
          const oldAudience = await requestToken(second, agent.clientId, agent.clientSecret, { resource: `${TRYING_IT_OUT}/api/v1` });
          expect([who, oldAudience.status, oldAudience.body.error]).toEqual([who, 400, 'invalid_target']);
        }
        // A token for the old issuer's management API is not one for this API.
        expect((await api(second.url, oldToken.body.access_token).get('/api/v1/agents')).status).toBe(401);
      } finally {
        await second.close();
      }
    } finally {
      await db.drop();
    }
  });
});

describe('the implied management audience', () => {
  let t: TestIdp;
  let org: Awaited<ReturnType<typeof createOrg>>;
  beforeAll(async () => {
    t = await startTestIdp();
    org = await createOrg(t);
  });
  afterAll(() => t.close());

  it('comes with a management scope: the default only when no audience is registered; an agent without one cannot ask for it', async () => {
    const management = `${t.url}/api/v1`;
    const helper = await agentWithSecret(t, org.token, { scopes: ['agents:read', 'orders:read'], audiences: ['https://orders.example'] });
    const byDefault = await requestToken(t, helper.clientId, helper.clientSecret);
    expect(audOf(byDefault.body.access_token)).toBe('https://orders.example');
    const asked = await requestToken(t, helper.clientId, helper.clientSecret, { resource: management });
    expect(asked.status).toBe(200);
    expect(audOf(asked.body.access_token)).toBe(management);
    expect((await api(t.url, asked.body.access_token).get('/api/v1/agents')).status).toBe(200);

    // Without a management scope the management audience is not implied, and DEFAULT_AUDIENCE stays the default.
    const plain = await agentWithSecret(t, org.token, { scopes: ['orders:read'] });
    expect((await requestToken(t, plain.clientId, plain.clientSecret, { resource: management })).body.error).toBe('invalid_target');
    expect(audOf((await requestToken(t, plain.clientId, plain.clientSecret)).body.access_token)).toBe(t.config.defaultAudience);

    // Taking the scope away takes the audience with it.
    await api(t.url, org.token).patch(`/api/v1/agents/${helper.clientId}`, { body: { scopes: ['orders:read'] } });
    expect((await requestToken(t, helper.clientId, helper.clientSecret, { resource: management })).body.error).toBe('invalid_target');
  });

  it('is not registered: POST and PATCH with it in audiences answer 400 and store nothing', async () => {
    const management = `${t.url}/api/v1`;
    const client = api(t.url, org.token);
    const before = (await client.get('/api/v1/agents?limit=100')).body.total;
    const created = await client.post('/api/v1/agents', {
      body: { name: 'pinned', scopes: ['agents:read'], audiences: ['https://orders.example', management] },
    });
    expect(created.status).toBe(400);
    expect(created.body).toMatchObject({
      code: 'validation_failed',
      errors: [{ field: '/audiences/1', message: expect.stringContaining('implied by the management scopes') }],
    });
    expect((await client.get('/api/v1/agents?limit=100')).body.total).toBe(before);

    const agent = await agentWithSecret(t, org.token, { scopes: ['agents:read'], audiences: ['https://orders.example'] });
    const patched = await client.patch(`/api/v1/agents/${agent.clientId}`, { body: { audiences: [management] } });
    expect(patched.status).toBe(400);
    expect(patched.body.errors.map((e: { field: string }) => e.field)).toEqual(['/audiences/0']);
    expect((await client.get(`/api/v1/agents/${agent.clientId}`)).body.audiences).toEqual(['https://orders.example']);
    // Another issuer's /api/v1 is just an audience like any other.
    expect((await client.patch(`/api/v1/agents/${agent.clientId}`, { body: { audiences: [`${REAL_DOMAIN}/api/v1`] } })).status).toBe(200);
    // An org's first admin registers none.
    const admin = await client.get(`/api/v1/agents/${org.admin.agentId}`);
    expect(admin.body.audiences).toEqual([]);
    expect(audOf(await managementToken(t, org.admin.clientId, org.admin.clientSecret))).toBe(management);
  });
});

describe('migration UnstoreManagementAudience', () => {
  it('removes stored management audiences from agents with a management scope, and down puts them back', async () => {
    const db = await freshDatabase();
    try {
      await withDataSource(db, async (ds) => {
        await ds.runMigrations({ transaction: 'each' });
        await undoThroughUnstore(ds);
        const orgId = randomUUID();
        await ds.query(`INSERT INTO orgs (id, name, is_root, created_at) VALUES ($1, 'root', true, now())`, [orgId]);
        const agents: Record<string, [string[], string[]]> = {
          operator: [['agents:read', 'keys:write', 'orgs:write'], [`${TRYING_IT_OUT}/api/v1`]],
          admin: [['agents:read', 'agents:write', 'audit:read'], ['https://old.example/idp/api/v1']],
          mixed: [
            ['audit:read', 'orders:read'],
            ['https://orders.example', `${TRYING_IT_OUT}/api/v1`, 'https://orders.example/api/v10'],
          ],
          lookalike: [['keys:read'], ['https://x.example/api/v1/', 'urn:x:/api/v1', 'https://x.example/api/v1?v=2']],
          plain: [['orders:read'], ['https://orders.example/api/v1']],
        };
        const ids = Object.fromEntries(Object.keys(agents).map((name) => [name, randomUUID()]));
        for (const [name, [scopes, audiences]] of Object.entries(agents)) {
          await ds.query(
            `INSERT INTO agents (id, org_id, name, status, scopes, audiences, metadata, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $5, '{}', now(), now())`,
            [ids[name], orgId, name, scopes, audiences],
          );
        }
        const audiences = async () =>
          Object.fromEntries(
            (await ds.query(`SELECT name, audiences FROM agents`)).map((row: { name: string; audiences: string[] }) => [row.name, row.audiences]),
          );

        await ds.runMigrations({ transaction: 'each' });
        expect(await audiences()).toEqual({
          operator: [],
          admin: [],
          mixed: ['https://orders.example', 'https://orders.example/api/v10'],
          lookalike: agents.lookalike[1],
          plain: agents.plain[1],
        });

        // Down: exactly as before for an agent unchanged since; removed entries in front for one that changed.
        await ds.query(`UPDATE agents SET audiences = ARRAY['https://new.example'] WHERE name = 'admin'`);
        await undoThroughUnstore(ds);
        expect(await audiences()).toEqual({
          ...Object.fromEntries(Object.entries(agents).map(([name, [, audiences]]) => [name, audiences])),
          admin: ['https://old.example/idp/api/v1', 'https://new.example'],
        });
        expect((await ds.query(`SELECT to_regclass('removed_management_audiences') AS t`))[0].t).toBeNull();
      });
    } finally {
      await db.drop();
    }
  });
});
