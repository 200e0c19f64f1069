import type { Logger } from '../lib/logger.ts';
import type { RevocationsRepository } from './revocations.repository.ts';
import type { ReplaysRepository } from './replays.repository.ts';

const PURGE_EVERY_MS = 60 * 60 * 1000;

/**
 * Hourly: forget revocations of tokens that have expired anyway, and the ids of one-time JWTs
 * that can no longer be replayed. Idempotent on every instance.
 */
export class RevocationPurge {
  readonly #repo: RevocationsRepository;
  readonly #replays: Pick<ReplaysRepository, 'purgeExpired'> | undefined;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(repo: RevocationsRepository, logger: Logger, replays?: Pick<ReplaysRepository, 'purgeExpired'>) {
    this.#repo = repo;
    this.#logger = logger;
    this.#replays = replays;
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
      const replayIds = (await this.#replays?.purgeExpired()) ?? 0;
      if (replayIds > 0) this.#logger.info('purged ids of one-time JWTs past their window', { purged: replayIds });
      return purged;
    } catch (err) {
      this.#logger.warn('could not purge expired revocations; will try again', { err });
      return 0;
    }
  }
}
