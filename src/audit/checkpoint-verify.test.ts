import { randomUUID } from 'node:crypto';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { CHECKPOINT_JWS_TYPE, checkpointHash, payloadBytes, rootOf, type Checkpoint, type PresentedEvent } from './checkpoint-format.ts';
import { jwksLookup, verifyChain } from './checkpoint-verify.ts';

// The verifier alone, on chains signed here: what retention does to a window is `purged`, not
// tampering, and the chain's links are checked whatever the events.

const { privateKey, publicKey } = await generateKeyPair('ES256');
const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] };

const event = (at: string): PresentedEvent => ({
  eventId: randomUUID(),
  occurredAt: at,
  orgId: 'o',
  actor: { type: 'agent', id: 'a' },
  action: 'agent.created',
  target: { type: 'agent', id: 'x' },
  outcome: 'success',
  requestId: null,
  ip: null,
  userAgent: null,
  details: { n: 1, nested: { b: 2, a: 1 } },
});

async function chain(windows: [string, string, PresentedEvent[]][]): Promise<Checkpoint[]> {
  const out: Checkpoint[] = [];
  for (const [from, to, events] of windows) {
    const previous = out[out.length - 1];
    const c: Checkpoint = {
      checkpointId: randomUUID(),
      orgId: 'o',
      seq: out.length + 1,
      from,
      to,
      count: events.length,
      root: rootOf(events),
      previous: previous ? checkpointHash(previous) : null,
      createdAt: to,
      signature: '',
    };
    c.signature = await new CompactSign(payloadBytes(c)).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: CHECKPOINT_JWS_TYPE }).sign(privateKey);
    out.push(c);
  }
  return out;
}

const day1 = [event('2026-01-01T10:00:00.000Z'), event('2026-01-01T11:00:00.000Z')];
const day2 = [event('2026-01-02T10:00:00.000Z')];

describe('verifyChain', () => {
  it('verifies a clean chain', async () => {
    const c = await chain([
      ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', day1],
      ['2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z', day2],
    ]);
    expect(await verifyChain(c, [...day1, ...day2], jwksLookup(jwks), { retainedFrom: '2025-01-01T00:00:00.000Z' })).toEqual({
      verified: true,
      events: 3,
      checkpoints: 2,
      problems: [],
      purged: [],
    });
  });

  it('reports a window dropped by retention as purged, not as missing events, and still checks the chain', async () => {
    const c = await chain([
      ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', day1],
      ['2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z', day2],
    ]);
    // Day 1 is gone: retention dropped its partition.
    const result = await verifyChain(c, day2, jwksLookup(jwks), { retainedFrom: '2026-01-02T00:00:00.000Z' });
    expect(result).toEqual({
      verified: true,
      events: 1,
      checkpoints: 2,
      problems: [],
      purged: [{ checkpointId: c[0].checkpointId, from: c[0].from, to: c[0].to }],
    });
    // A purged checkpoint that was changed is still caught.
    const forged = [{ ...c[0], count: 5 }, c[1]];
    const bad = await verifyChain(forged, day2, jwksLookup(jwks), { retainedFrom: '2026-01-02T00:00:00.000Z' });
    expect(bad.problems.map((p) => p.reason)).toEqual(['bad_signature', 'chain_broken']);
  });

  it('names a signature by an unknown key', async () => {
    const c = await chain([['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', day1]]);
    const result = await verifyChain(c, day1, jwksLookup({ keys: [] }), { retainedFrom: '2025-01-01T00:00:00.000Z' });
    expect(result.problems).toEqual([{ checkpointId: c[0].checkpointId, reason: 'bad_signature', detail: 'no public key for kid k1' }]);
  });

  it('serializes canonically: the order of keys in details does not matter, their values do', async () => {
    const reordered = day1.map((e) => ({ ...e, details: { nested: { a: 1, b: 2 }, n: 1 } }));
    expect(rootOf(reordered)).toBe(rootOf(day1));
    expect(rootOf(day1.map((e) => ({ ...e, details: { ...e.details, n: 2 } })))).not.toBe(rootOf(day1));
  });
});
