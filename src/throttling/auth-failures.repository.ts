import type { DataSource } from 'typeorm';

// The shared counters of failed client authentications (migrations/…-CreateAuthFailures.ts).

export interface FailureCount {
  key: string;
  failures: number;
  windowStartedAt: Date;
}

// Every SET expression sees the row as it was: a window that has passed starts again at 1.
const RECORD_SQL = `INSERT INTO auth_failures AS f (key, window_started_at, failures)
  SELECT key, $2::timestamptz, 1 FROM unnest($1::text[]) AS key
  ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN f.window_started_at <= $3::timestamptz THEN 1 ELSE f.failures + 1 END,
    window_started_at = CASE WHEN f.window_started_at <= $3::timestamptz THEN $2::timestamptz ELSE f.window_started_at END
  RETURNING key, failures, window_started_at`;

export class AuthFailuresRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  /** Counts one failure for each key, in one round trip; each key's window runs `windowMs` from its first failure. */
  async record(keys: string[], now: Date, windowMs: number): Promise<FailureCount[]> {
    const rows: { key: string; failures: number; window_started_at: Date }[] = await this.#ds.query(RECORD_SQL, [
      keys,
      now,
      new Date(now.getTime() - windowMs),
    ]);
    return rows.map((r) => ({ key: r.key, failures: r.failures, windowStartedAt: r.window_started_at }));
  }

  /** Forgets windows that started before `before` (they have passed). */
  async purge(before: Date): Promise<number> {
    const [, affected]: [unknown, number] = await this.#ds.query('DELETE FROM auth_failures WHERE window_started_at < $1', [before]);
    return affected ?? 0;
  }
}
