/**
 * Polling for tests: wait for something another process does (a file, a
 * log line, a listening port) by asking again every 25 ms until a deadline,
 * never by sleeping a fixed time. Runs in the test process as whoever runs
 * the tests.
 */

/** Polls `probe` until it returns something other than undefined/false; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}
