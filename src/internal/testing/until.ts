/**
 * The tests' one poll-wait, for the unit tests beside the code and for test/ (which re-exports it from
 * `test/support/wait.ts`). Lives under src/ because src/ may not import test/; nothing outside a test imports it.
 */

/**
 * Calls `fn` every `everyMs` (100 ms) until `ok` accepts its value, and returns that value. Throws `timed out waiting
 * for <what>` with the last value after `timeoutMs` (30 s); an error thrown by `fn` ends the wait at once. A `what`
 * given as a function is called only then (to name what was seen meanwhile).
 */
export async function until<T>(
  fn: () => T | Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 30_000,
  what: string | (() => string) = 'condition',
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) {
      const seen =
        typeof last === 'boolean' || last === undefined ? '' : `; last: ${JSON.stringify(last)?.slice(0, 500)}`;
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}${seen}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
    last = await fn();
  }
  return last;
}

/** `until` for a plain condition: resolves once `cond()` holds, polled every `everyMs` (5 ms), for up to `timeoutMs` (5 s). */
export async function untilTrue(
  cond: () => boolean | Promise<boolean>,
  what: string | (() => string) = 'condition',
  timeoutMs = 5_000,
  everyMs = 5,
): Promise<void> {
  await until(cond, Boolean, timeoutMs, what, everyMs);
}
