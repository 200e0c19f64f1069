import type { DataSource } from 'typeorm';
import type { AuditWriter } from '../audit/audit.writer.ts';
import type { KeyRing } from '../keys/key-ring.ts';
import type { Schemas } from '../http/validate.ts';

// What /readyz answers: may a load balancer send this instance requests? Yes while the database
// answers, a signing key is loaded and the audit writer keeps up (every token and change waits
// for its audit event, so a stuck writer fails requests); no from the moment a shutdown starts.

export type CheckResult = Schemas['ReadinessCheck'];
/** The answer, as openapi.yaml's Readiness schema gives it; no checks while draining (nothing is asked of the database then). */
export type Readiness = Schemas['Readiness'];

export interface ReadinessOptions {
  /** How long the database has to answer SELECT 1 (default 2 s). */
  databaseTimeoutMs?: number;
  /** More audit events than this waiting means the database is not keeping up (default 5000: ten full batches). */
  maxAuditQueue?: number;
  /**
   * How long a failed audit INSERT keeps the instance unready unless one succeeds first (default
   * 30 s). Bounded, because an instance taken out of rotation gets no requests, and so no write
   * that could succeed and clear it.
   */
  auditFailureHoldMs?: number;
  now?: () => number;
}

export interface ReadinessSources {
  dataSource: Pick<DataSource, 'query'>;
  keyRing: Pick<KeyRing, 'current'>;
  auditWriter: Pick<AuditWriter, 'queueDepth' | 'lastFailureAt'>;
}

export class ReadinessCheck {
  readonly #sources: ReadinessSources;
  readonly #databaseTimeoutMs: number;
  readonly #maxAuditQueue: number;
  readonly #auditFailureHoldMs: number;
  readonly #now: () => number;
  #draining = false;
  /** Probes that arrive together share one SELECT 1: /readyz needs no token, and must not become a way to load the database. */
  #databaseCheck: Promise<CheckResult> | undefined;

  constructor(sources: ReadinessSources, options: ReadinessOptions = {}) {
    this.#sources = sources;
    this.#databaseTimeoutMs = options.databaseTimeoutMs ?? 2_000;
    this.#maxAuditQueue = options.maxAuditQueue ?? 5_000;
    this.#auditFailureHoldMs = options.auditFailureHoldMs ?? 30_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** From now on, unavailable: the shutdown has started. */
  drain(): void {
    this.#draining = true;
  }

  get draining(): boolean {
    return this.#draining;
  }

  async check(): Promise<Readiness> {
    if (this.#draining) return { status: 'unavailable', draining: true };
    const checks = { database: await this.#database(), signingKeys: this.#signingKeys(), audit: this.#audit() };
    // A drain that began during the query wins.
    if (this.#draining) return { status: 'unavailable', draining: true };
    const ready = checks.database === 'ok' && checks.signingKeys === 'ok' && checks.audit === 'ok';
    return { status: ready ? 'ready' : 'unavailable', checks };
  }

  #database(): Promise<CheckResult> {
    this.#databaseCheck ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      // A query that does not come back in time counts as failed; it is left to finish on its own.
      const late = new Promise<CheckResult>((resolve) => (timer = setTimeout(() => resolve('failing'), this.#databaseTimeoutMs)));
      const answered = this.#sources.dataSource.query('SELECT 1').then(
        (): CheckResult => 'ok',
        (): CheckResult => 'failing',
      );
      try {
        return await Promise.race([answered, late]);
      } finally {
        clearTimeout(timer);
        this.#databaseCheck = undefined;
      }
    })();
    return this.#databaseCheck;
  }

  #signingKeys(): CheckResult {
    try {
      return this.#sources.keyRing.current.activeKid ? 'ok' : 'failing';
    } catch {
      // Not loaded.
      return 'failing';
    }
  }

  #audit(): CheckResult {
    const { queueDepth, lastFailureAt } = this.#sources.auditWriter;
    if (queueDepth > this.#maxAuditQueue) return 'failing';
    return lastFailureAt !== undefined && this.#now() - lastFailureAt < this.#auditFailureHoldMs ? 'failing' : 'ok';
  }
}
