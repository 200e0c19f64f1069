import type { MigrationInterface, QueryRunner } from 'typeorm';

// Org limits ({maxAgents?, maxActiveCredentialsPerAgent?, tokensPerMinutePerAgent?}) and the
// per-agent token quota ({perMinute?, perHour?}); absent keys mean no limit. /token reads both
// with the agent (and instances keep them in memory), so a change of an org's limits is
// announced on agent_idp_state like a change of an agent (`org:<id>`).
export class AddLimitsAndQuotas1763769600900 implements MigrationInterface {
  name = 'AddLimitsAndQuotas1763769600900';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orgs ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'`);
    await q.query(`ALTER TABLE agents ADD COLUMN token_quota jsonb`);
    await q.query(
      `CREATE TRIGGER orgs_notify_state AFTER UPDATE OR DELETE ON orgs
         FOR EACH ROW EXECUTE FUNCTION agent_idp_notify_state('org', 'id')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER orgs_notify_state ON orgs`);
    await q.query(`ALTER TABLE agents DROP COLUMN token_quota`);
    await q.query(`ALTER TABLE orgs DROP COLUMN limits`);
  }
}
