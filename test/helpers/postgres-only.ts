// Tests that need a PostgreSQL server (DATABASE_URL), and say why when they are skipped on the
// embedded database: the reason is part of the skipped test's name, so the run's list shows it.

const onPostgres = process.env.DATABASE_URL !== undefined;

const skippedName = (name: string, why: string) => `${name} [skipped on the embedded database: ${why}]`;

export function describeOnPostgres(name: string, why: string, fn: () => void): void {
  if (onPostgres) describe(name, fn);
  else describe.skip(skippedName(name, why), fn);
}

export function itOnPostgres(name: string, why: string, fn: () => Promise<unknown>): void {
  if (onPostgres) it(name, fn);
  else it.skip(skippedName(name, why), fn);
}

/** The other way round: what holds only on the embedded database. */
export function itOnEmbedded(name: string, why: string, fn: () => unknown): void {
  if (onPostgres) it.skip(`${name} [skipped on PostgreSQL: ${why}]`, fn as () => void);
  else it(name, fn as () => void);
}
