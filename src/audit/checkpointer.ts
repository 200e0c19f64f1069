import { randomUUID } from 'node:crypto';
import { CompactSign, importJWK, type JWK } from 'jose';
import type { DataSource } from 'typeorm';
import type { Logger } from '../lib/logger.ts';
import { JWK_PRIVATE_MEMBERS } from '../lib/redaction.ts';
import type { Keyset } from '../keys/key-ring.ts';
import { CHECKPOINT_JWS_TYPE, checkpointHash, payloadBytes, RootBuilder, type Checkpoint } from './checkpoint-format.ts';
import type { Chain, CheckpointsRepository } from './checkpoints.repository.ts';

// Builds the checkpoints, in the background, every AUDIT_CHECKPOINT_SECONDS: each chain that got
// events since its last checkpoint gets the next one, up to a moment a little in the past (so
// that an event whose batch is still committing is not left out of the window it belongs to).
// Every instance runs it; a transaction-scoped advisory lock lets one at a time store, and a
// checkpoint commits with its signer's public key only if its chain has not moved on meanwhile.
// /token is not touched: the job reads what the audit writer has committed, a chunk at a time.

/** At most this share of the time goes to reading and hashing a window (the rest waits between chunks). */
export const CHECKPOINT_CPU_SHARE = 0.2;

/** pg_try_advisory_xact_lock key of the checkpointing ("aidp" "ckpt"). */
export const CHECKPOINT_LOCK = 0x61696470_636b7074n;

export interface CheckpointerOptions {
  everyMs: number;
  /** How far behind the clock a window ends (default: the interval, at most 10 s). */
  settleMs?: number;
  clock: () => number;
}

export class AuditCheckpointer {
  readonly #ds: DataSource;
  readonly #repo: CheckpointsRepository;
  readonly #keyset: () => Keyset;
  readonly #logger: Logger;
  readonly #options: Required<CheckpointerOptions>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<Checkpoint[]> | undefined;

  constructor(dataSource: DataSource, repo: CheckpointsRepository, keyset: () => Keyset, logger: Logger, options: CheckpointerOptions) {
    this.#ds = dataSource;
    this.#repo = repo;
    this.#keyset = keyset;
    this.#logger = logger;
    this.#options = { settleMs: Math.min(10_000, options.everyMs), ...options };
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.run().catch((err) => this.#logger.error('audit checkpoint failed; the next run tries again', { err }));
    }, this.#options.everyMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.catch(() => {});
  }

  /** Builds what is due now; returns the new checkpoints (none when another instance holds the lock). */
  run(): Promise<Checkpoint[]> {
    const running = (this.#running ?? Promise.resolve([])).catch(() => []).then(() => this.#run());
    this.#running = running;
    return running;
  }

  async #run(): Promise<Checkpoint[]> {
    const to = new Date(this.#options.clock() - this.#options.settleMs);
    const keyset = this.#keyset();
    const jwk = keyset.privateJwks.find((k) => k.kid === keyset.activeKid);
    if (!jwk) throw new Error('no active signing key to sign checkpoints with');
    const key = await importJWK(jwk, keyset.activeAlg);
    // The events are read and hashed outside any transaction, chunk by chunk on pooled
    // connections (on the embedded database, the one connection is never held for long, so
    // /token's audit writes keep going); only the insert is locked.
    const chains = await this.#repo.chainsWithEvents(await this.#repo.watermark(this.#ds), to, this.#ds);
    const made: Checkpoint[] = [];
    for (const chain of chains) {
      const last = await this.#repo.last(chain);
      const checkpoint = await this.#next(chain, last, to);
      if (!checkpoint) continue;
      checkpoint.signature = await new CompactSign(payloadBytes(checkpoint))
        .setProtectedHeader({ alg: keyset.activeAlg, kid: keyset.activeKid, typ: CHECKPOINT_JWS_TYPE })
        .sign(key);
      const stored = await this.#ds.transaction(async (m) => {
        const [{ ok }] = await m.query(`SELECT pg_try_advisory_xact_lock($1::bigint) AS ok`, [CHECKPOINT_LOCK.toString()]);
        // Another instance is storing, or has stored, this chain's next checkpoint: it stands.
        if (!ok || (await this.#repo.last(chain, m))?.seq !== last?.seq) return false;
        await this.#repo.insert(checkpoint, m);
        await this.#repo.rememberSigner(keyset.activeKid, keyset.activeAlg, publicHalf(jwk), new Date(), m);
        return true;
      });
      if (stored) made.push(checkpoint);
    }
    if (made.length) this.#logger.debug('audit checkpoints made', { checkpoints: made.length, to: to.toISOString() });
    return made;
  }

  async #next(chain: Chain, last: Checkpoint | null, to: Date): Promise<Checkpoint | null> {
    const from = last ? new Date(last.to) : await this.#repo.firstEventAt(chain, this.#ds);
    if (!from || from >= to) return null;
    const root = new RootBuilder();
    // Paced: a minute of events at thousands of tokens a second is a second or more of reading and
    // hashing, which unpaced took half the throughput of /token for two seconds (bench `steady`).
    for await (const event of this.#repo.events(chain, from, to, { share: CHECKPOINT_CPU_SHARE })) root.add(event);
    if (root.count === 0) return null;
    return {
      checkpointId: randomUUID(),
      orgId: chain,
      seq: (last?.seq ?? 0) + 1,
      from: from.toISOString(),
      to: to.toISOString(),
      count: root.count,
      root: root.digest(),
      previous: last ? checkpointHash(last) : null,
      createdAt: new Date().toISOString(),
      signature: '',
    };
  }
}

/** The key without its private members (RFC 7518 §6): what may be kept and published. */
function publicHalf(jwk: JWK): JWK {
  return Object.fromEntries(Object.entries(jwk).filter(([name]) => !JWK_PRIVATE_MEMBERS.includes(name))) as JWK;
}
