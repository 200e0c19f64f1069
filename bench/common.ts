import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// What every part of the harness (bench/run.ts and the modules it is split into) shares: the
// paths, the progress log, rounding, and the list of what to undo when the run ends or fails.

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = dirname(BENCH_DIR);
export const RESULTS_DIR = join(BENCH_DIR, 'results');

export const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Run in reverse order by bench/run.ts's cleanUp, on success, failure or Ctrl-C. */
export const cleanups: (() => Promise<void> | void)[] = [];
