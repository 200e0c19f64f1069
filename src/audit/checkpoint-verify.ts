import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { checkpointHash, compareEvents, payloadBytes, RootBuilder, type Checkpoint, type PresentedEvent } from './checkpoint-format.ts';

// Verification of checkpoint chains against events, the same for GET /api/v1/audit/verify and
// the CLI's offline verifier (which trusts no server: it takes the events, the checkpoints and
// the public keys as files). Each problem names the checkpoint and what broke.

export type ProblemReason = 'event_changed' | 'event_missing' | 'event_added' | 'chain_broken' | 'bad_signature';

export interface Problem {
  checkpointId: string;
  reason: ProblemReason;
  detail: string;
}

export interface VerifyResult {
  verified: boolean;
  events: number;
  checkpoints: number;
  problems: Problem[];
  /** Checkpoints whose window starts before retainedFrom: their events were dropped by retention, not by anyone. */
  purged: { checkpointId: string; from: string; to: string }[];
}

export type KeyLookup = (kid: string) => Promise<JWK | undefined>;

/** A JWKS's keys by kid (the offline verifier's lookup). */
export function jwksLookup(jwks: { keys: JWK[] }): KeyLookup {
  const byKid = new Map(jwks.keys.map((k) => [k.kid, k]));
  return async (kid) => byKid.get(kid);
}

async function signatureProblem(c: Checkpoint, keyOf: KeyLookup): Promise<string | undefined> {
  try {
    const header = decodeProtectedHeader(c.signature);
    if (!header.kid || !header.alg) return 'the signature names no kid or alg';
    const jwk = await keyOf(header.kid);
    if (!jwk) return `no public key for kid ${header.kid}`;
    const key = await importJWK(jwk, header.alg);
    const { payload } = await compactVerify(c.signature, key);
    if (Buffer.compare(Buffer.from(payload), Buffer.from(payloadBytes(c))) !== 0) return 'the checkpoint differs from what was signed';
    return undefined;
  } catch (err) {
    return `the signature does not verify: ${(err as Error).message}`;
  }
}

/**
 * Verifies one chain: `checkpoints` in seq order (with, first, the one before the range when
 * there is one, to check the link, marked by `linkOnly`), `events` every event of the chain in
 * [checkpoints[0].from, last.to) in chain order (older ones may come too: they are counted
 * against nothing and reported as added when before the chain's first checkpoint).
 */
export async function verifyChain(
  checkpoints: Checkpoint[],
  events: AsyncIterable<PresentedEvent> | Iterable<PresentedEvent>,
  keyOf: KeyLookup,
  options: { retainedFrom: string; linkOnly?: Checkpoint },
): Promise<VerifyResult> {
  const result: VerifyResult = { verified: true, events: 0, checkpoints: checkpoints.length, problems: [], purged: [] };
  const problem = (c: Checkpoint, reason: ProblemReason, detail: string) => result.problems.push({ checkpointId: c.checkpointId, reason, detail });
  let previous = options.linkOnly;
  for (const c of checkpoints) {
    const bad = await signatureProblem(c, keyOf);
    if (bad) problem(c, 'bad_signature', bad);
    if (previous) {
      if (c.seq !== previous.seq + 1) problem(c, 'chain_broken', `seq ${c.seq} follows seq ${previous.seq}`);
      else if (c.previous !== checkpointHash(previous)) problem(c, 'chain_broken', `previous does not match checkpoint ${previous.checkpointId}`);
      else if (c.from !== previous.to) problem(c, 'chain_broken', `from ${c.from} is not the previous checkpoint's to ${previous.to}`);
    } else if (c.seq !== 1) {
      problem(c, 'chain_broken', `checkpoint ${c.seq - 1} of the chain is missing`);
    } else if (c.previous !== null) {
      problem(c, 'chain_broken', 'the first checkpoint names a previous one');
    }
    previous = c;
  }

  // One pass over the events, in order, beside the checkpoints.
  const iterator = (Symbol.asyncIterator in events ? events[Symbol.asyncIterator]() : (events as Iterable<PresentedEvent>)[Symbol.iterator]()) as
    AsyncIterator<PresentedEvent> | Iterator<PresentedEvent>;
  let next = await iterator.next();
  let last: PresentedEvent | undefined;
  const advance = async () => {
    last = next.value as PresentedEvent;
    next = await iterator.next();
    if (!next.done && last && compareEvents(last, next.value) > 0) throw new Error('events are not in chain order');
  };
  const first = checkpoints[0];
  // Before the chain's first checkpoint there is nothing: an event there was put in afterwards.
  while (!next.done && first && next.value.occurredAt < first.from) {
    if (first.seq === 1 && next.value.occurredAt >= options.retainedFrom)
      problem(first, 'event_added', `event ${next.value.eventId} precedes the chain's first checkpoint`);
    await advance();
  }
  for (const c of checkpoints) {
    const purged = c.from < options.retainedFrom;
    const root = new RootBuilder();
    while (!next.done && next.value.occurredAt < c.to) {
      if (next.value.occurredAt >= c.from) root.add(next.value);
      await advance();
    }
    if (purged) {
      result.purged.push({ checkpointId: c.checkpointId, from: c.from, to: c.to });
      continue;
    }
    result.events += root.count;
    const digest = root.digest();
    if (root.count < c.count) problem(c, 'event_missing', `${c.count - root.count} of its ${c.count} events are missing`);
    else if (root.count > c.count) problem(c, 'event_added', `${root.count - c.count} events more than the ${c.count} it covers`);
    else if (digest !== c.root) problem(c, 'event_changed', `its ${c.count} events are not those it covers: one was changed`);
  }
  result.verified = result.problems.length === 0;
  return result;
}

/** The results of several chains as one. */
export function combine(results: VerifyResult[]): VerifyResult {
  const problems = results.flatMap((r) => r.problems);
  return {
    verified: problems.length === 0,
    events: results.reduce((n, r) => n + r.events, 0),
    checkpoints: results.reduce((n, r) => n + r.checkpoints, 0),
    problems,
    purged: results.flatMap((r) => r.purged),
  };
}
