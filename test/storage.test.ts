import { randomBytes, randomUUID } from 'node:crypto';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { freshDatabase } from './helpers/database.ts';
import { api } from './helpers/api.ts';
import { agentWithSecret, createOrg, managementToken, operatorToken, requestToken } from './factories.ts';
import { createDataSource } from '../src/db/data-source.ts';
import { migrations } from '../migrations/index.ts';
import { itOnPostgres } from './helpers/postgres-only.ts';

describe('what is stored', () => {
  let t: TestIdp;
  beforeAll(async () => {
    t = await startTestIdp();
  });
  afterAll(() => t.close());

  it('no table holds a plaintext secret, token or private key', async () => {
    const org = await createOrg(t);
    const a = await agentWithSecret(t, org.token);
    const rotated = await api(t.url, org.token).post(`/api/v1/agents/${a.clientId}/credentials/${a.credential.credentialId}/rotate`, {
      body: { gracePeriodSeconds: 60 },
    });
    const token = (await requestToken(t, a.clientId, rotated.body.clientSecret)).body.access_token as string;
    const secrets = [org.admin.clientSecret, a.clientSecret, rotated.body.clientSecret, t.operator.clientSecret, token, await operatorToken(t)];

    const ds = t.idp.database.dataSource;
    const tables: { table_name: string }[] = await ds.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
    expect(tables.map((r) => r.table_name)).toEqual(expect.arrayContaining(['orgs', 'agents', 'credentials', 'signing_keys']));
    let dumped = '';
    for (const { table_name } of tables) {
      const rows = await ds.query(`SELECT row_to_json(x)::text AS j FROM "${table_name}" x`);
      dumped += rows.map((r: { j: string }) => r.j).join('\n');
    }
    expect(dumped.length).toBeGreaterThan(1000);
    for (const secret of secrets) {
      expect(dumped).not.toContain(secret);
      expect(dumped).not.toContain(secret.slice(-40));
    }
    expect(dumped).not.toContain('aidp_cs_');

    // The private half of the signing key is ciphertext: no JWK private member in clear.
    const [key] = await ds.query('SELECT private_key_enc, public_jwk FROM signing_keys');
    expect(key.private_key_enc).not.toMatch(/"d"|"kty"/);
    expect(key.public_jwk.d).toBeUndefined();
  });
});

describe('migrations', () => {
  it('run up and down on a fresh database, in order', async () => {
    const db = await freshDatabase();
    const ds = createDataSource(db.url, 1);
    try {
      await ds.initialize();
      expect((await ds.runMigrations({ transaction: 'each' })).map((m) => m.name)).toEqual(migrations.map((m) => m.name));
      const tables = async () =>
        (
          await ds.query(
            `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'migrations' AND table_name !~ '^audit_events_p' ORDER BY 1`,
          )
        ).map((r: { table_name: string }) => r.table_name);
      expect(await tables()).toEqual([
        'agent_idp_instances',
        'agent_token_counts',
        'agents',
        'audit_checkpoints',
        'audit_events',
        'auth_failures',
        'checkpoint_signers',
        'credential_expiry_notices',
        'credentials',
        'federated_identities',
        'org_token_counts',
        'orgs',
        'removed_management_audiences',
        'replay_ids',
        'revoked_tokens',
        'signing_keys',
        'webhook_deliveries',
        'webhooks',
      ]);
      for (let i = 0; i < migrations.length; i++) await ds.undoLastMigration({ transaction: 'each' });
      expect(await tables()).toEqual([]);
      expect(await ds.runMigrations()).toHaveLength(migrations.length);
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });
});

describe('restarts', () => {
  it('keep the signing keys; a wrong KEY_ENCRYPTION_KEY refuses to start with a clear message', async () => {
    const db = await freshDatabase();
    const kek = randomBytes(32).toString('base64');
    try {
      const first = await startTestIdp({ db, env: { KEY_ENCRYPTION_KEY: kek } });
      const jwks1 = await (await fetch(`${first.url}/.well-known/jwks.json`)).json();
      await first.close();

      const second = await startTestIdp({ db, env: { KEY_ENCRYPTION_KEY: kek } });
      const jwks2 = await (await fetch(`${second.url}/.well-known/jwks.json`)).json();
      expect(jwks2).toEqual(jwks1);
      // The operator from the first start still gets tokens (same bootstrap settings are re-applied).
      await second.close();

      await expect(startTestIdp({ db, env: { KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') } })).rejects.toThrow(
        /KEY_ENCRYPTION_KEY does not match the key that encrypted signing key/,
      );
    } finally {
      await db.drop();
    }
  });
});

describe('operators made before webhooks', () => {
  it('get webhooks:read and webhooks:write at the next start; agents without every earlier management scope do not', async () => {
    const db = await freshDatabase();
    const kek = randomBytes(32).toString('base64');
    try {
      const first = await startTestIdp({ db, env: { KEY_ENCRYPTION_KEY: kek } });
      const operator = first.operator;
      const ds = first.idp.database.dataSource;
      const [root] = await ds.query(`SELECT id FROM orgs WHERE is_root`);
      const earlier = ['agents:read', 'agents:write', 'audit:read', 'keys:read', 'keys:write', 'orgs:read', 'orgs:write'];
      const other = randomUUID();
      const narrow = randomUUID();
      // As an earlier release left them: the bootstrap operator and a second full operator with
      // every management scope of then, and a narrow agent of the root org.
      await ds.query(`UPDATE agents SET scopes = $2 WHERE id = $1`, [operator.clientId, earlier]);
      for (const [id, scopes] of [
        [other, earlier],
        [narrow, ['keys:read']],
      ] as const) {
        await ds.query(`INSERT INTO agents (id, org_id, name, status, scopes, audiences, metadata) VALUES ($1, $2, 'x', 'active', $3, '{}', '{}')`, [
          id,
          root.id,
          scopes,
        ]);
      }
      await first.close();

      const second = await startTestIdp({
        db,
        env: { KEY_ENCRYPTION_KEY: kek, BOOTSTRAP_ADMIN_CLIENT_ID: operator.clientId, BOOTSTRAP_ADMIN_CLIENT_SECRET: operator.clientSecret },
      });
      try {
        const scopesOf = async (id: string) =>
          ((await second.idp.database.dataSource.query(`SELECT scopes FROM agents WHERE id = $1`, [id]))[0].scopes as string[]).sort();
        expect(await scopesOf(operator.clientId)).toEqual([...earlier, 'webhooks:read', 'webhooks:write'].sort());
        expect(await scopesOf(other)).toEqual([...earlier, 'webhooks:read', 'webhooks:write'].sort());
        expect(await scopesOf(narrow)).toEqual(['keys:read']);
        const token = await managementToken(second, operator.clientId, operator.clientSecret);
        expect((await api(second.url, token).get('/api/v1/webhooks')).status).toBe(200);
      } finally {
        await second.close();
      }
    } finally {
      await db.drop();
    }
  });
});

describe('starting', () => {
  itOnPostgres(
    'two instances at once on a new database both come up, with one root org, one operator and one active key',
    'the embedded database serves one process, so no two instances start on it',
    async () => {
      const db = await freshDatabase();
      const kek = randomBytes(32).toString('base64');
      try {
        const first = await startTestIdp({ db, env: { KEY_ENCRYPTION_KEY: kek } });
        // Same operator, same key, started together with the first one's settings.
        const env = {
          KEY_ENCRYPTION_KEY: kek,
          BOOTSTRAP_ADMIN_CLIENT_ID: first.operator.clientId,
          BOOTSTRAP_ADMIN_CLIENT_SECRET: first.operator.clientSecret,
        };
        await first.close();
        const db2 = await freshDatabase();
        try {
          const [a, b] = await Promise.all([startTestIdp({ db: db2, env }), startTestIdp({ db: db2, env })]);
          const ds = a.idp.database.dataSource;
          expect((await ds.query('SELECT count(*)::int AS n FROM orgs WHERE is_root'))[0].n).toBe(1);
          expect((await ds.query('SELECT count(*)::int AS n FROM agents'))[0].n).toBe(1);
          expect((await ds.query(`SELECT count(*)::int AS n FROM signing_keys WHERE status = 'active'`))[0].n).toBe(1);
          expect((await requestToken(b, env.BOOTSTRAP_ADMIN_CLIENT_ID, env.BOOTSTRAP_ADMIN_CLIENT_SECRET)).status).toBe(200);
          await Promise.all([a.close(), b.close()]);
        } finally {
          await db2.drop();
        }
      } finally {
        await db.drop();
      }
    },
  );

  it('a new BOOTSTRAP_ADMIN_CLIENT_SECRET replaces the old one', async () => {
    const db = await freshDatabase();
    const kek = randomBytes(32).toString('base64');
    try {
      const first = await startTestIdp({ db, env: { KEY_ENCRYPTION_KEY: kek } });
      const old = first.operator;
      await first.close();
      const newSecret = (await import('../src/credentials/secrets.ts')).generateSecret(randomUUID());
      const second = await startTestIdp({
        db,
        env: { KEY_ENCRYPTION_KEY: kek, BOOTSTRAP_ADMIN_CLIENT_ID: old.clientId, BOOTSTRAP_ADMIN_CLIENT_SECRET: newSecret },
      });
      expect((await requestToken(second, old.clientId, newSecret)).status).toBe(200);
      expect((await requestToken(second, old.clientId, old.clientSecret)).body.error).toBe('invalid_client');
      await second.close();
    } finally {
      await db.drop();
    }
  });
});
