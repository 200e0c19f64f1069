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

interface PendingClaim {
  keepSeconds: number;
  resolve: (claimed: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Claims are sent in batches: every claim made while one INSERT is on its way goes in the next
 * one (an unnest of ids), so that under load a claim costs a share of one statement, not one
 * statement each. A request waits no longer than for its own statement.
 */
export class ReplaysRepository {
  readonly #ds: DataSource;
  /** id → the claims of it waiting for the next statement (the first one may win; any other is a replay). */
  #pending = new Map<string, PendingClaim[]>();
  #inFlight = false;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  /**
   * Records `id` as used; false when it was already used (and its record has not run out). An
   * expired record of the same id is taken over, so the table needs no purge to stay correct.
   * `keepSeconds`: how long the record lasts, when the JWT that carries it may outlive the usual
   * window (a federated assertion may live an hour, RFC 7523 §2.1 at /token).
   */
  claim(id: string, keepSeconds: number = REPLAY_WINDOW_SECONDS): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const waiting = this.#pending.get(id);
      if (waiting) waiting.push({ keepSeconds, resolve, reject });
      else this.#pending.set(id, [{ keepSeconds, resolve, reject }]);
      if (!this.#inFlight) this.#flush();
    });
  }

  #flush(): void {
    const batch = this.#pending;
    if (batch.size === 0) return;
    this.#pending = new Map();
    this.#inFlight = true;
    const ids = [...batch.keys()];
    // The first claim of an id decides how long it is kept (the one that may win).
    const keep = [...batch.values()].map((claims) => claims[0].keepSeconds);
    this.#ds
      .query(
        `INSERT INTO replay_ids (id, expires_at) SELECT c.id, now() + make_interval(secs => c.keep)
           FROM unnest($1::text[], $2::integer[]) AS c(id, keep)
         ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE replay_ids.expires_at <= now()
         RETURNING id`,
        [ids, keep],
      )
      .then(
        (rows: { id: string }[]) => {
          const claimed = new Set(rows.map((r) => r.id));
          for (const [id, claims] of batch) claims.forEach((c, i) => c.resolve(i === 0 && claimed.has(id)));
        },
        (err: unknown) => {
          for (const claims of batch.values()) for (const c of claims) c.reject(err);
        },
      )
      .finally(() => {
        this.#inFlight = false;
        this.#flush();
      });
  }

  /** Drops the records that ran out. Returns how many. */
  async purgeExpired(): Promise<number> {
    const [, count]: [unknown[], number] = await this.#ds.query(`DELETE FROM replay_ids WHERE expires_at <= now()`);
    return count;
  }
}
