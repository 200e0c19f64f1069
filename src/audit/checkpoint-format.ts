import { createHash } from 'node:crypto';

// The canonical form of the audit log's checkpoints (design/events.md), shared by the server
// and the offline verifier of the CLI, so that both compute the same bytes:
//
// - An event is serialized as the API shows it (presentAuditEvent: eventId, occurredAt, orgId,
//   actor, action, target, outcome, requestId, ip, userAgent, details) in canonical JSON: object
//   keys sorted by UTF-16 code unit at every depth, no whitespace, strings and numbers as
//   JSON.stringify writes them (the RFC 8785 rules for the values this log holds).
// - A chain is the events of one org (or of no org: the service's chain). Its events are in the
//   order (occurredAt, eventId).
// - A checkpoint covers its chain's events in [from, to). Its root is
//   SHA-256("agent-idp audit v1" ‖ SHA-256(event₁) ‖ … ‖ SHA-256(eventₙ)), each hash 32 raw
//   bytes and each event its canonical JSON in UTF-8: a hash chain over the window, so a
//   changed, missing or added event changes it (and its count tells the last two apart).
// - Its signed payload is the canonical JSON of {checkpointId, orgId, seq, from, to, count,
//   root, previous, createdAt}; `previous` is the hex SHA-256 of the previous checkpoint's
//   payload (null for the first), and the next checkpoint's `from` is the previous one's `to`.
// - The signature is a compact JWS (RFC 7515) of that payload by the IdP's active signing key,
//   header {alg, kid, typ: "aidp-audit-checkpoint"}.

export const CHECKPOINT_JWS_TYPE = 'aidp-audit-checkpoint';
const ROOT_PREFIX = Buffer.from('agent-idp audit v1', 'utf8');

/** An event as the API and the export show it. */
export interface PresentedEvent {
  eventId: string;
  occurredAt: string;
  orgId: string | null;
  actor: { type: string; id: string | null };
  action: string;
  target: { type: string; id: string | null };
  outcome: string;
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
}

export interface CheckpointPayload {
  checkpointId: string;
  orgId: string | null;
  seq: number;
  from: string;
  to: string;
  count: number;
  root: string;
  previous: string | null;
  createdAt: string;
}

export interface Checkpoint extends CheckpointPayload {
  signature: string;
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** Exactly the members that are hashed, whatever else the object holds. */
function hashedEvent(e: PresentedEvent): PresentedEvent {
  return {
    eventId: e.eventId,
    occurredAt: e.occurredAt,
    orgId: e.orgId,
    actor: { type: e.actor.type, id: e.actor.id },
    action: e.action,
    target: { type: e.target.type, id: e.target.id },
    outcome: e.outcome,
    requestId: e.requestId,
    ip: e.ip,
    userAgent: e.userAgent,
    details: e.details,
  };
}

/** Builds a root one event at a time, in chain order. */
export class RootBuilder {
  readonly #hash = createHash('sha256').update(ROOT_PREFIX);
  count = 0;

  add(event: PresentedEvent): void {
    this.#hash.update(
      createHash('sha256')
        .update(canonicalJson(hashedEvent(event)), 'utf8')
        .digest(),
    );
    this.count++;
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

export function rootOf(events: PresentedEvent[]): string {
  const builder = new RootBuilder();
  for (const e of events) builder.add(e);
  return builder.digest();
}

/** Chain order: (occurredAt, eventId); ISO 8601 UTC strings of one format sort as their instants. */
export function compareEvents(a: Pick<PresentedEvent, 'occurredAt' | 'eventId'>, b: Pick<PresentedEvent, 'occurredAt' | 'eventId'>): number {
  if (a.occurredAt !== b.occurredAt) return a.occurredAt < b.occurredAt ? -1 : 1;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

export function payloadOf(c: CheckpointPayload): CheckpointPayload {
  return {
    checkpointId: c.checkpointId,
    orgId: c.orgId,
    seq: c.seq,
    from: c.from,
    to: c.to,
    count: c.count,
    root: c.root,
    previous: c.previous,
    createdAt: c.createdAt,
  };
}

export function payloadBytes(c: CheckpointPayload): Uint8Array {
  return new TextEncoder().encode(canonicalJson(payloadOf(c)));
}

/** What the next checkpoint of the chain names as `previous`. */
export function checkpointHash(c: CheckpointPayload): string {
  return createHash('sha256').update(payloadBytes(c)).digest('hex');
}
