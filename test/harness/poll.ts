// Polling for a state the code under test reaches eventually; free of vitest, so scripts
// (make demo, npm run bench) can use it too.

/**
 * Polls `read` every `intervalMs` until `ok` accepts its value or `timeoutMs` has passed, and
 * returns the last value either way, so the caller's assertion shows what was seen.
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
