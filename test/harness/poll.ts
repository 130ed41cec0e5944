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

/**
 * pollUntil with one file's own patience, so that its waits read `until(read, ok)`:
 * `const until = poller({ timeoutMs: 20_000 })`; a call may still pass its own timeout.
 */
export function poller(defaults: { timeoutMs: number; intervalMs?: number }) {
  return <T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = defaults.timeoutMs): Promise<T> =>
    pollUntil(read, ok, timeoutMs, defaults.intervalMs ?? 100);
}

/** Polls a yes/no `check` until it holds or `timeoutMs` has passed; whether it held. */
export function pollFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  return pollUntil(
    async () => check(),
    (held) => held,
    timeoutMs,
    intervalMs,
  );
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
