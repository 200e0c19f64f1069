import { Lru } from '../lib/lru.ts';

// Remembers secrets that passed bcrypt, as SHA-256(secret), for a short time, so that an agent
// asking for tokens in a loop does not pay bcrypt's tens of milliseconds each time.
// An entry is only a shortcut for the bcrypt compare: the caller still reads the credential's
// current row, and the entry counts only while the row still holds the same hash it was
// checked against. Rotation, revocation, expiry and suspension therefore end it at once, on
// every instance, because they change or disable that row.
//
// An entry in use is checked again before it runs out (refreshDue): an agent asking in a loop
// would otherwise pay bcrypt on every request in flight at the moment its entry expires, each
// waiting behind the others on the thread pool (a stall of seconds at a few thousand tokens/s).
// The refresh is a bcrypt compare like any other, so an entry still stands for at most
// SECRET_MEMORY_SECONDS after the last compare that proved it.

interface Entry {
  credentialId: string;
  /** The bcrypt hash the secret matched (the current or the previous one). */
  hash: string;
  until: number;
}

export class SecretMemory {
  readonly #entries: Lru<string, Entry>;
  readonly #ttlMs: number;
  readonly #now: () => number;

  // 50,000 entries of about 200 bytes: ~10 MB, room for that many agents asking every minute.
  constructor(ttlSeconds: number, maxEntries = 50_000, now: () => number = Date.now) {
    this.#entries = new Lru(maxEntries);
    this.#ttlMs = ttlSeconds * 1000;
    this.#now = now;
  }

  /** In the last quarter of its life: the caller should check the secret again now (in the background) to keep the entry. */
  refreshDue(digest: string): boolean {
    const entry = this.#entries.peek(digest);
    return entry !== undefined && entry.until - this.#now() <= this.#ttlMs / 4;
  }

  /** The hash the secret with this digest was verified against, if remembered and fresh. */
  recall(digest: string, credentialId: string): string | undefined {
    const entry = this.#entries.get(digest);
    if (!entry) return undefined;
    if (entry.until <= this.#now() || entry.credentialId !== credentialId) {
      this.#entries.delete(digest);
      return undefined;
    }
    return entry.hash;
  }

  remember(digest: string, credentialId: string, hash: string): void {
    if (this.#ttlMs <= 0) return;
    this.#entries.set(digest, { credentialId, hash, until: this.#now() + this.#ttlMs });
  }

  forgetCredential(credentialId: string): void {
    for (const [digest, entry] of this.#entries.entries()) {
      if (entry.credentialId === credentialId) this.#entries.delete(digest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
