import type { Logger } from '../lib/logger.ts';
import type { RevocationsRepository } from './revocations.repository.ts';

const PURGE_EVERY_MS = 60 * 60 * 1000;

/** Hourly: forget revocations of tokens that have expired anyway. Idempotent on every instance. */
export class RevocationPurge {
  readonly #repo: RevocationsRepository;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(repo: RevocationsRepository, logger: Logger) {
    this.#repo = repo;
    this.#logger = logger;
  }

  start(): void {
    this.#timer = setInterval(() => void this.run(), PURGE_EVERY_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async run(): Promise<number> {
    try {
      const purged = await this.#repo.purgeExpired();
      if (purged > 0) this.#logger.info('purged revocations of expired tokens', { purged });
      return purged;
    } catch (err) {
      this.#logger.warn('could not purge expired revocations; will try again', { err });
      return 0;
    }
  }
}
