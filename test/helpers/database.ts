import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { createDataSource, migrate } from '../../src/db/data-source.ts';

// A fresh database for one test file: a new database on the PostgreSQL server of DATABASE_URL
// (as CI runs), or an in-memory embedded PGlite when DATABASE_URL is unset.

// Before a test database is dropped, every audit event the tests produced in it is scanned:
// none may hold a client secret, a JWT, an Authorization header or a private key (a PEM block,
// or a JWK's private members). Every other table is scanned for private keys: only public keys
// and ciphertext are ever stored. Every test file's database passes through here, so this
// covers the whole suite.
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----|"(d|p|q|dp|dq|qi|k)"\s*:\s*"/;
const LEAKS: [string, RegExp][] = [
  ['a client secret', /aidp_cs_[0-9a-f]{32}_/],
  ['a webhook secret', /whsec_[A-Za-z0-9+/]{20,}/],
  ['a JWT', /eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}/],
  ['an Authorization header', /\b(Basic|Bearer|DPoP) [A-Za-z0-9+/=._-]{8,}|"authorization"/i],
  ['a private key', PRIVATE_KEY],
];

/** The same scan over an app's log lines: none may hold a secret, a JWT, credentials or a private key. */
export function assertNoSecretsInLogs(lines: string[]): void {
  for (const line of lines) {
    for (const [what, pattern] of LEAKS) {
      if (pattern.test(line)) throw new Error(`a log line holds ${what}: ${line.slice(0, 300)}`);
    }
  }
}

export async function assertNoSecretsInAudit(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // The audit log, and the webhook tables: a webhook's secret is stored encrypted only, and a
    // delivery's payload is an audit event.
    let scanned = 0;
    for (const table of ['audit_events', 'webhooks', 'webhook_deliveries']) {
      const exists = await client.query(`SELECT to_regclass($1) AS t`, [`public.${table}`]);
      if (!exists.rows[0].t) continue;
      const { rows } = await client.query(`SELECT row_to_json(e)::text AS j FROM ${table} e`);
      for (const { j } of rows as { j: string }[]) {
        for (const [what, pattern] of LEAKS) {
          if (pattern.test(j)) throw new Error(`a row of ${table} holds ${what}: ${j.slice(0, 300)}`);
        }
      }
      if (table === 'audit_events') scanned = rows.length;
    }
    const tables = await client.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name !~ '^audit_events'`,
    );
    for (const { table_name } of tables.rows as { table_name: string }[]) {
      const dump = await client.query(`SELECT row_to_json(t)::text AS j FROM "${table_name}" t`);
      for (const { j } of dump.rows as { j: string }[]) {
        if (PRIVATE_KEY.test(j)) throw new Error(`a row of ${table_name} holds a private key: ${j.slice(0, 300)}`);
      }
    }
    return scanned;
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  url: string;
  embedded: boolean;
  drop(): Promise<void>;
}

export async function freshDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const embedded = await startEmbeddedPostgres(undefined);
    return {
      url: embedded.url,
      embedded: true,
      async drop() {
        try {
          await assertNoSecretsInAudit(embedded.url);
        } finally {
          await embedded.stop();
        }
      },
    };
  }
  const name = `aidp_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    embedded: false,
    async drop() {
      try {
        await assertNoSecretsInAudit(url.toString());
      } finally {
        const client = new pg.Client({ connectionString: serverUrl });
        await client.connect();
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await client.end();
      }
    },
  };
}

/** A fresh database, migrated, behind a data source of our own (repository-level tests). */
export async function migratedDatabase(): Promise<{ db: TestDatabase; ds: DataSource }> {
  const db = await freshDatabase();
  const ds = createDataSource(db.url, db.embedded ? 1 : 4);
  await ds.initialize();
  await migrate(ds);
  return { db, ds };
}
