import type { DataSource } from 'typeorm';
import { DAY_MS } from '../lib/time.ts';

// Tokens issued, per agent per minute and hour (quotas) and per org per UTC day (usage)
// (migrations/…-CreateTokenCounts.ts). Increments are added, never set, so that every instance
// adds its own.

export type Bucket = 'minute' | 'hour';

export interface AgentCount {
  agentId: string;
  bucket: Bucket;
  /** Start of the bucket, ms. */
  start: number;
  tokens: number;
}

export interface OrgDayCount {
  orgId: string;
  /** YYYY-MM-DD, UTC. */
  day: string;
  tokens: number;
}

// One round trip: the org days in a data-modifying CTE (run whether or not it is read), the
// agent buckets below, returning every instance's totals so far.
const ADD_SQL = `WITH org_days AS (
    INSERT INTO org_token_counts AS t (org_id, day, tokens)
    SELECT * FROM unnest($1::uuid[], $2::date[], $3::bigint[])
    ON CONFLICT (org_id, day) DO UPDATE SET tokens = t.tokens + EXCLUDED.tokens
  )
  INSERT INTO agent_token_counts AS t (agent_id, bucket, bucket_start, tokens)
  SELECT * FROM unnest($4::uuid[], $5::text[], $6::timestamptz[], $7::bigint[])
  ON CONFLICT (agent_id, bucket, bucket_start) DO UPDATE SET tokens = t.tokens + EXCLUDED.tokens
  RETURNING agent_id, bucket, bucket_start, tokens`;

/** One UTC day of an org's usage. */
export interface OrgDayTokens {
  /** YYYY-MM-DD, UTC. */
  day: string;
  tokens: number;
}

export class TokenCountsRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  /** Adds the increments; returns the totals of the agent buckets touched. */
  async add(agents: AgentCount[], orgs: OrgDayCount[]): Promise<AgentCount[]> {
    const rows: { agent_id: string; bucket: Bucket; bucket_start: Date; tokens: string }[] = await this.#ds.query(ADD_SQL, [
      orgs.map((o) => o.orgId),
      orgs.map((o) => o.day),
      orgs.map((o) => o.tokens),
      agents.map((a) => a.agentId),
      agents.map((a) => a.bucket),
      agents.map((a) => new Date(a.start)),
      agents.map((a) => a.tokens),
    ]);
    return rows.map((r) => ({ agentId: r.agent_id, bucket: r.bucket, start: r.bucket_start.getTime(), tokens: Number(r.tokens) }));
  }

  /**
   * Tokens an org was issued on `today`, on the 30 days ending with it (UTC days), and on each of
   * those days, oldest first (a day without tokens counts 0).
   */
  async orgTokens(orgId: string, today: string): Promise<{ today: number; last30Days: number; perDay: OrgDayTokens[] }> {
    const rows: { day: string; tokens: string }[] = await this.#ds.query(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, tokens FROM org_token_counts WHERE org_id = $1 AND day > $2::date - 30 AND day <= $2::date`,
      [orgId, today],
    );
    const byDay = new Map(rows.map((r) => [r.day, Number(r.tokens)]));
    const end = Date.parse(`${today}T00:00:00Z`);
    const perDay = Array.from({ length: 30 }, (_, i) => {
      const day = utcDay(end - (29 - i) * DAY_MS);
      return { day, tokens: byDay.get(day) ?? 0 };
    });
    return { today: byDay.get(today) ?? 0, last30Days: perDay.reduce((sum, d) => sum + d.tokens, 0), perDay };
  }

  /** Forgets agent buckets older than two days and org days older than 400. */
  async purge(now: number): Promise<void> {
    await this.#ds.query('DELETE FROM agent_token_counts WHERE bucket_start < $1', [new Date(now - 2 * DAY_MS)]);
    await this.#ds.query('DELETE FROM org_token_counts WHERE day < $1::date', [utcDay(now - 400 * DAY_MS)]);
  }
}

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
