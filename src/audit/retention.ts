import type { DataSource, QueryRunner } from 'typeorm';
import type { Logger } from '../lib/logger.ts';
import { DAY_MS } from '../lib/time.ts';
import type { AuditWriter } from './audit.writer.ts';
import { schedulerEvent } from './events.ts';
import { type AuditRepository, partitionName, utcDay } from './audit.repository.ts';

// The audit log's upkeep, daily: day partitions are created a week ahead, and the days that
// have wholly left the retention window are dropped (a DROP TABLE, not a DELETE: no bloat, no
// vacuum, the same cost for a day of ten events or of ten million). One instance at a time, by
// a PostgreSQL advisory lock; the others find it taken and do nothing.

/** pg_try_advisory_lock key of the audit maintenance ("aidp" "audi"). */
export const AUDIT_MAINTENANCE_LOCK = 0x61696470_61756469n;

const DAYS_BEHIND = 1;
const DAYS_AHEAD = 7;
export interface AuditMaintenanceOptions {
  retentionDays: number;
  now?: () => Date;
  /** The org whose audit log records the job's own events; null (the default) for none, which the root org's operators see. */
  orgId?: string | null;
  /** Between runs (default one day). */
  intervalMs?: number;
  /** From start() to the first run (default 5 s). */
  firstRunDelayMs?: number;
  /** How long a CREATE or DROP waits for the table lock before giving up until the next run (default 5 s). */
  lockTimeoutMs?: number;
}

export interface MaintenanceResult {
  created: string[];
  dropped: string[];
}

export class AuditMaintenance {
  readonly #ds: DataSource;
  readonly #repo: AuditRepository;
  readonly #writer: AuditWriter;
  readonly #logger: Logger;
  readonly #options: Required<Omit<AuditMaintenanceOptions, 'now' | 'orgId'>> & { orgId: string | null };
  readonly #now: () => Date;
  #firstRun: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<MaintenanceResult> | undefined;

  constructor(dataSource: DataSource, repo: AuditRepository, writer: AuditWriter, logger: Logger, options: AuditMaintenanceOptions) {
    this.#ds = dataSource;
    this.#repo = repo;
    this.#writer = writer;
    this.#logger = logger;
    this.#now = options.now ?? (() => new Date());
    this.#options = {
      retentionDays: options.retentionDays,
      orgId: options.orgId ?? null,
      intervalMs: options.intervalMs ?? DAY_MS,
      firstRunDelayMs: options.firstRunDelayMs ?? 5_000,
      lockTimeoutMs: options.lockTimeoutMs ?? 5_000,
    };
  }

  start(): void {
    if (this.#timer) return;
    const runLogged = () => {
      this.run().catch((err) => this.#logger.error('audit maintenance failed; it will run again', { err }));
    };
    this.#firstRun = setTimeout(runLogged, this.#options.firstRunDelayMs);
    this.#firstRun.unref();
    this.#timer = setInterval(runLogged, this.#options.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer; resolves once a run in progress has finished. */
  async stop(): Promise<void> {
    clearTimeout(this.#firstRun);
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => {});
  }

  /**
   * Creates the partitions from yesterday to a week ahead (UTC) and drops those whose whole
   * day is older than now − retentionDays. Does nothing when another run holds the lock.
   */
  run(): Promise<MaintenanceResult> {
    // A second call while one runs in this process finds the work being done.
    if (this.#running) return Promise.resolve({ created: [], dropped: [] });
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(): Promise<MaintenanceResult> {
    const now = this.#now();
    const cutoff = new Date(now.getTime() - this.#options.retentionDays * DAY_MS);
    const result = await this.#withLock((runner) => this.#maintain(runner, now, cutoff));
    if (!result) {
      this.#logger.debug('audit maintenance: another instance holds the lock; nothing to do');
      return { created: [], dropped: [] };
    }
    // Written once the connection is back in the pool: the writer needs one (the embedded
    // database has exactly one).
    const { created, dropped } = result;
    if (created.length) {
      this.#logger.info('audit partitions created', { partitions: created });
      await this.#audit('audit.partitions_created', { partitions: created });
    }
    if (dropped.length) {
      this.#logger.info('audit retention purged partitions', { partitions: dropped, retentionDays: this.#options.retentionDays, cutoff: cutoff.toISOString() });
      await this.#audit('audit.retention_purged', { partitions: dropped, retentionDays: this.#options.retentionDays, cutoff: cutoff.toISOString() });
    }
    return result;
  }

  /** Runs fn on a connection of its own holding the advisory lock; undefined if the lock is taken. */
  async #withLock<T>(fn: (runner: QueryRunner) => Promise<T>): Promise<T | undefined> {
    const runner = this.#ds.createQueryRunner();
    await runner.connect();
    let locked = false;
    try {
      const [{ ok }] = await runner.query(`SELECT pg_try_advisory_lock($1::bigint) AS ok`, [AUDIT_MAINTENANCE_LOCK.toString()]);
      locked = ok;
      if (!locked) return undefined;
      // A partition's DDL takes a lock on audit_events; never queue behind a long reader for
      // long, since every insert would queue behind the DDL.
      await runner.query(`SET lock_timeout = ${Math.max(1, Math.floor(this.#options.lockTimeoutMs))}`);
      return await fn(runner);
    } finally {
      if (locked) {
        // Should the connection be gone, so is its session lock.
        await runner
          .query(`RESET lock_timeout; SELECT pg_advisory_unlock(${AUDIT_MAINTENANCE_LOCK}::bigint)`)
          .catch((err: unknown) => this.#logger.warn('audit maintenance: could not release its lock', { err }));
      }
      await runner.release();
    }
  }

  async #maintain(runner: QueryRunner, now: Date, cutoff: Date): Promise<MaintenanceResult> {
    const created: string[] = [];
    const dropped: string[] = [];
    const today = Date.parse(`${utcDay(now)}T00:00:00Z`);
    for (let offset = -DAYS_BEHIND; offset <= DAYS_AHEAD; offset++) {
      const day = utcDay(new Date(today + offset * DAY_MS));
      // Never recreate a day that retention drops.
      if (today + (offset + 1) * DAY_MS <= cutoff.getTime()) continue;
      try {
        if (await this.#repo.createPartition(day, runner)) created.push(partitionName(day));
      } catch (err) {
        // The writer creates a missing day itself, should it come to that.
        this.#logger.warn('could not create an audit partition; the next run tries again', { partition: partitionName(day), err });
      }
    }
    for (const { name, day } of await this.#repo.listPartitions(runner)) {
      // A day is dropped once its end is past the cutoff, i.e. all of it is older than the window.
      if (Date.parse(`${day}T00:00:00Z`) + DAY_MS > cutoff.getTime()) continue;
      try {
        await this.#repo.dropPartition(name, runner);
        dropped.push(name);
      } catch (err) {
        this.#logger.warn('could not drop an expired audit partition; the next run tries again', { partition: name, err });
      }
    }
    return { created, dropped };
  }

  async #audit(action: 'audit.partitions_created' | 'audit.retention_purged', details: Record<string, unknown>): Promise<void> {
    try {
      await this.#writer.write(schedulerEvent('audit-maintenance', action, { type: 'audit_partition', id: null }, details, this.#options.orgId));
    } catch (err) {
      // The partitions are already created or dropped; the log line above keeps the record.
      this.#logger.error('audit maintenance: could not write its audit event', { action, details, err });
    }
  }
}
