/**
 * Waits until `check` holds, for what a timer of the service must bring about (a reconnect, a
 * poll). The limit is far above what any such timer takes, so that a loaded machine cannot miss
 * it; how quickly things happen is for the benchmarks to say.
 */
export async function eventually(check: () => boolean | Promise<boolean>, { timeoutMs = 20_000, everyMs = 50 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still not so after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
