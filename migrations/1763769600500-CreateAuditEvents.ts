import type { MigrationInterface, QueryRunner } from 'typeorm';

// The audit log, partitioned by UTC day on occurred_at so that retention drops whole days
// (src/audit/retention.ts). There is no DEFAULT partition on purpose: a row outside the
// created days must fail loudly (the writer then creates its day) rather than land where
// retention can never drop it. A partitioned table's keys must include the partition key.
// agent_id is the agent the event is about, filled by the writer, so that the agentId filter
// is one index range. event_id is a UUIDv7 whose time is occurred_at's millisecond.
export class CreateAuditEvents1763769600500 implements MigrationInterface {
  name = 'CreateAuditEvents1763769600500';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE audit_events (
        event_id      uuid NOT NULL,
        occurred_at   timestamptz NOT NULL,
        org_id        uuid,
        actor_type    text NOT NULL CHECK (actor_type IN ('agent', 'client', 'scheduler', 'system', 'anonymous')),
        actor_id      text,
        action        text NOT NULL,
        target_type   text NOT NULL,
        target_id     text,
        agent_id      uuid,
        outcome       text NOT NULL CHECK (outcome IN ('success', 'failure')),
        request_id    text,
        ip            text,
        user_agent    text,
        details       jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (event_id, occurred_at)
      ) PARTITION BY RANGE (occurred_at)`);
    // Every query is per org, newest first, keyset on (occurred_at, event_id); one index per
    // filter. The primary key leads with event_id for GET /audit/{eventId}, and so that the
    // planner never walks it in time order filtering out other orgs' rows.
    await q.query(`CREATE INDEX audit_events_org_time ON audit_events (org_id, occurred_at DESC, event_id DESC)`);
    await q.query(`CREATE INDEX audit_events_org_agent_time ON audit_events (org_id, agent_id, occurred_at DESC, event_id DESC)`);
    await q.query(`CREATE INDEX audit_events_org_action_time ON audit_events (org_id, action, occurred_at DESC, event_id DESC)`);
    await q.query(`CREATE INDEX audit_events_org_actor_time ON audit_events (org_id, actor_id, occurred_at DESC, event_id DESC)`);
    // Failures are few and what security teams look for first.
    await q.query(`CREATE INDEX audit_events_org_failure_time ON audit_events (org_id, occurred_at DESC, event_id DESC) WHERE outcome = 'failure'`);

    // Yesterday to a week ahead (UTC), so that events can be written right after migrating;
    // the maintenance job keeps this window moving.
    const today = new Date();
    today.setUTCHours(0, 0, 0, 0);
    for (let offset = -1; offset <= 7; offset++) {
      const from = new Date(today.getTime() + offset * 86_400_000);
      const to = new Date(from.getTime() + 86_400_000);
      const day = from.toISOString().slice(0, 10);
      await q.query(
        `CREATE TABLE IF NOT EXISTS audit_events_p${day.replace(/-/g, '')} PARTITION OF audit_events
         FOR VALUES FROM ('${day} 00:00:00+00') TO ('${to.toISOString().slice(0, 10)} 00:00:00+00')`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    // Drops the partitions with it.
    await q.query(`DROP TABLE audit_events`);
  }
}
