import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditEvent } from '../audit/audit-event.ts';
import type { AuditWriter, AuditWriterObserver } from '../audit/audit.writer.ts';
import type { KeyRing } from '../keys/key-ring.ts';
import type { Coherence } from '../coherence/coherence.ts';

// The Prometheus metrics of one instance, in a registry of its own (tests run several instances
// in one process; the global registry would mix them). What the OAuth endpoints do is counted
// from the audit events the writer stores, so that nothing is added to their code; gauges read
// their value when scraped. Recording on a request costs a few map lookups: label children are
// built once and kept.

export type RateLimitedEndpoint = 'token' | 'introspect' | 'revoke' | 'management';
const RATE_LIMITED_ENDPOINTS: readonly RateLimitedEndpoint[] = ['token', 'introspect', 'revoke', 'management'];

/** Where the gauges read from. */
export interface MetricsSources {
  auditWriter: Pick<AuditWriter, 'queueDepth' | 'observe'>;
  keyRing: Pick<KeyRing, 'current'>;
  coherence: Pick<Coherence, 'enabled' | 'usable'>;
}

// Tokens are signed in well under 10 ms; the long tail is bcrypt (tens of ms) and a slow database.
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
// Label values taken from audit details are our own code's words (reason codes, grant names);
// anything else becomes `other`, so that no odd value can grow the number of series.
const WORD = /^[a-z][a-z_]{0,63}$/;
const word = (value: unknown): string => (typeof value === 'string' && WORD.test(value) ? value : 'other');

let processRegistry: Registry | undefined;

/** The process's own metrics (CPU, memory, event loop, GC), collected once per process whatever the number of instances. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

type Observe = (seconds: number) => void;

export class Metrics {
  /** Everything one scrape of this instance shows: its own metrics and the process's. */
  readonly registry: Registry;
  readonly #tokensIssued: Counter<'grant'>;
  readonly #denials: Counter<'reason'>;
  readonly #introspections: Counter<'active'>;
  readonly #rateLimited = new Map<string, Counter.Internal>();
  readonly #requestDuration: Histogram<'route' | 'method' | 'status'>;
  /** route → method → status → the histogram's child for those labels. */
  readonly #requestChildren = new Map<string, Map<string, Map<number, Observe>>>();
  readonly #auditWrite: Histogram;

  constructor({ auditWriter, keyRing, coherence }: MetricsSources) {
    const own = new Registry();
    const registers = [own];
    this.#tokensIssued = new Counter({ name: 'agent_idp_tokens_issued_total', help: 'Access tokens issued, by grant type', labelNames: ['grant'], registers });
    this.#denials = new Counter({ name: 'agent_idp_token_denials_total', help: 'Token requests refused, by reason', labelNames: ['reason'], registers });
    this.#introspections = new Counter({
      name: 'agent_idp_introspections_total',
      help: 'Token introspections, by whether the token was active',
      labelNames: ['active'],
      registers,
    });
    const rateLimited = new Counter({
      name: 'agent_idp_rate_limited_total',
      help: 'Requests refused with 429, by endpoint',
      labelNames: ['endpoint'],
      registers,
    });
    for (const endpoint of RATE_LIMITED_ENDPOINTS) {
      // Each series exists from the start at 0, so that rate() sees the first 429.
      rateLimited.labels(endpoint).inc(0);
      this.#rateLimited.set(endpoint, rateLimited.labels(endpoint));
    }
    this.#requestDuration = new Histogram({
      name: 'agent_idp_http_request_duration_seconds',
      help: 'HTTP requests of the service, by route template, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.#auditWrite = new Histogram({
      name: 'agent_idp_audit_write_seconds',
      help: 'Time of one audit INSERT (a batch of events)',
      buckets: WRITE_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'agent_idp_audit_queue_depth',
      help: 'Audit events not yet committed',
      registers,
      collect() {
        this.set(auditWriter.queueDepth);
      },
    });
    new Gauge({
      name: 'agent_idp_signing_key_age_seconds',
      help: 'Seconds since the active signing key started signing',
      registers,
      // Summed over the workers of a cluster it would mean nothing; the oldest is the one a stale key ring shows.
      aggregator: 'max',
      collect() {
        this.set((Date.now() - keyRing.current.activeSince.getTime()) / 1000);
      },
    });
    new Gauge({
      name: 'agent_idp_coherence_lease_ok',
      help: '1 while this instance may answer from its caches (lease held) or has none (embedded database); 0 when its lease has lapsed',
      registers,
      // Over the workers of a cluster: 0 as soon as one of them has lost its lease.
      aggregator: 'min',
      collect() {
        this.set(!coherence.enabled || coherence.usable() ? 1 : 0);
      },
    });
    this.registry = Registry.merge([own, processMetrics()]);
    auditWriter.observe(this.#auditObserver());
  }

  /** A request refused with 429 (the throttles call this). */
  rateLimited(endpoint: RateLimitedEndpoint): void {
    this.#rateLimited.get(endpoint)?.inc();
  }

  /** One answered request; `route` is a template or a fixed label, never a raw path. */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    let byMethod = this.#requestChildren.get(route);
    if (!byMethod) this.#requestChildren.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let observe = byStatus.get(status);
    if (!observe) byStatus.set(status, (observe = this.#requestDuration.labels(route, method, String(status)).observe));
    observe(seconds);
  }

  /** The text exposition format, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #auditObserver(): AuditWriterObserver {
    const issued = new Map<string, Counter.Internal>();
    const denied = new Map<string, Counter.Internal>();
    const auditWrite = this.#auditWrite;
    const child = <L extends string>(cache: Map<string, Counter.Internal>, counter: Counter<L>, value: string) => {
      let c = cache.get(value);
      if (!c) cache.set(value, (c = counter.labels(value)));
      return c;
    };
    const active = this.#introspections.labels('true');
    const inactive = this.#introspections.labels('false');
    // The series a dashboard plots from the start, at 0.
    for (const c of [active, inactive, child(issued, this.#tokensIssued, 'client_credentials')]) c.inc(0);
    return {
      stored: (event: AuditEvent) => {
        switch (event.action) {
          case 'token.issued':
            // Only client_credentials is served; a grant that is added says its name in details.grant.
            child(issued, this.#tokensIssued, event.details.grant === undefined ? 'client_credentials' : word(event.details.grant)).inc();
            return;
          case 'token.exchanged':
            child(issued, this.#tokensIssued, 'token_exchange').inc();
            return;
          case 'token.denied':
            child(denied, this.#denials, word(event.details.reason)).inc();
            return;
          case 'token.introspected':
            (event.details.active === true ? active : inactive).inc();
            return;
        }
      },
      batchWritten(seconds) {
        auditWrite.observe(seconds);
      },
    };
  }
}
