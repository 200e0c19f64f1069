import type { DataSource } from 'typeorm';

// The ids of one-time JWTs already seen: client assertions (RFC 7523 §3, item 7: "the
// authorization server MAY ensure that JWTs are not replayed") and DPoP proofs (RFC 9449 §11.1).
// One table for every instance, so that an id used on one is refused on all of them at once:
// the claim is a single INSERT, and the primary key decides between two instances racing.

/**
 * How long an id is kept: longer than any JWT that carries one is accepted (a client assertion
 * lives at most MAX_ASSERTION_LIFETIME_SECONDS plus the clock tolerance; a DPoP proof's iat may be
 * five minutes either side of now at /token), so a replay can never outlive its record.
 */
export const REPLAY_WINDOW_SECONDS = 15 * 60;

export class ReplaysRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  /**
   * Records `id` as used; false when it was already used (and its record has not run out). An
   * expired record of the same id is taken over, so the table needs no purge to stay correct.
   */
  async claim(id: string): Promise<boolean> {
    const rows: unknown[] = await this.#ds.query(
      `INSERT INTO replay_ids (id, expires_at) VALUES ($1, now() + make_interval(secs => $2))
       ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE replay_ids.expires_at <= now()
       RETURNING 1`,
      [id, REPLAY_WINDOW_SECONDS],
    );
    return rows.length === 1;
  }

  /** Drops the records that ran out. Returns how many. */
  async purgeExpired(): Promise<number> {
    const [, count]: [unknown[], number] = await this.#ds.query(`DELETE FROM replay_ids WHERE expires_at <= now()`);
    return count;
  }
}
