import type { DataSource } from 'typeorm';
import type { OrgLimits } from '../orgs/org.entity.ts';
import type { OrgDayTokens, TokenCountsRepository } from './token-counts.repository.ts';
import { utcDay } from './token-counts.repository.ts';
import type { TokenCounter } from './token-counter.ts';

export interface Usage {
  orgId: string;
  agents: { active: number; suspended: number };
  credentials: { active: number };
  tokensIssued: { today: number; last30Days: number; perDay: OrgDayTokens[] };
  limits: OrgLimits;
}

// Counts through the org's agents (agents_org_status_created, credentials_agent_created): no scan of another org.
const COUNTS_SQL = `SELECT o.limits,
    (SELECT count(*) FROM agents a WHERE a.org_id = o.id AND a.status = 'active') AS active,
    (SELECT count(*) FROM agents a WHERE a.org_id = o.id AND a.status = 'suspended') AS suspended,
    (SELECT count(*) FROM agents a JOIN credentials c ON c.agent_id = a.id
      WHERE a.org_id = o.id AND a.status <> 'decommissioned' AND c.status = 'active' AND (c.expires_at IS NULL OR c.expires_at > now())) AS credentials
   FROM orgs o WHERE o.id = $1`;

export class UsageService {
  readonly #ds: DataSource;
  readonly #counts: Pick<TokenCountsRepository, 'orgTokens'>;
  readonly #counter: Pick<TokenCounter, 'flush'>;
  readonly #now: () => number;

  constructor(dataSource: DataSource, counts: Pick<TokenCountsRepository, 'orgTokens'>, counter: Pick<TokenCounter, 'flush'>, now: () => number = Date.now) {
    this.#ds = dataSource;
    this.#counts = counts;
    this.#counter = counter;
    this.#now = now;
  }

  /** What an org holds and has used. Tokens issued by this instance are counted to the last one; other instances' to within about a second. */
  async of(orgId: string): Promise<Usage> {
    await this.#counter.flush();
    const [row]: { limits: OrgLimits; active: string; suspended: string; credentials: string }[] = await this.#ds.query(COUNTS_SQL, [orgId]);
    const tokensIssued = await this.#counts.orgTokens(orgId, utcDay(this.#now()));
    return {
      orgId,
      agents: { active: Number(row?.active ?? 0), suspended: Number(row?.suspended ?? 0) },
      credentials: { active: Number(row?.credentials ?? 0) },
      tokensIssued,
      limits: row?.limits ?? {},
    };
  }
}
