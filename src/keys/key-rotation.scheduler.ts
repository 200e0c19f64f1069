import type { Logger } from '../lib/logger.ts';
import type { KeysService, MaintenanceResult } from './keys.service.ts';

/** Runs the key maintenance every minute on every instance; the database lock lets one act. */
export class KeyRotationScheduler {
  readonly #keys: KeysService;
  readonly #logger: Logger;
  readonly #everyMs: number;
  readonly #onResult: (result: MaintenanceResult) => Promise<void> | void;
  #timer: NodeJS.Timeout | undefined;

  constructor(keys: KeysService, logger: Logger, options: { everyMs?: number; onResult?: (r: MaintenanceResult) => Promise<void> | void } = {}) {
    this.#keys = keys;
    this.#logger = logger;
    this.#everyMs = options.everyMs ?? 60_000;
    this.#onResult = options.onResult ?? (() => {});
  }

  start(): void {
    this.#timer = setInterval(() => void this.run(), this.#everyMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async run(now?: Date): Promise<MaintenanceResult | undefined> {
    try {
      const result = await this.#keys.maintain(now);
      await this.#onResult(result);
      return result;
    } catch (err) {
      this.#logger.error('signing key maintenance failed; will try again', { err });
      return undefined;
    }
  }
}
