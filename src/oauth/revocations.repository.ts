import type { DataSource } from 'typeorm';

// Revoked jtis, each kept until its token would have expired anyway. Every insert is announced
// to the other instances by the trigger revoked_tokens_notify_state (`jti:<jti>` on
// agent_idp_state, migrations/1763769600600-CreateStateNotifications.ts).
export class RevocationsRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  async revoke(jti: string, agentId: string, orgId: string, expiresAt: Date): Promise<void> {
    await this.#ds.query(`INSERT INTO revoked_tokens (jti, agent_id, org_id, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING`, [
      jti,
      agentId,
      orgId,
      expiresAt,
    ]);
  }

  /** Drops revocations of tokens that have expired anyway. Returns how many. */
  async purgeExpired(): Promise<number> {
    const [, count]: [unknown[], number] = await this.#ds.query(`DELETE FROM revoked_tokens WHERE expires_at < now()`);
    return count;
  }
}
