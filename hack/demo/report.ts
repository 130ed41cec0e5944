// How the demo talks: one line per step ("✓ 3/14 operator running …  1.2s"), optional indented
// detail lines under it, and a "✗" line with the reason when a step fails. The launcher and the
// steps process share it, so the numbering and the format stay one.

/** Steps in the whole demo: the launcher runs the first and the last, the steps process the rest. */
export const TOTAL_STEPS = 14;

export interface StepResult {
  /** The one-line result, e.g. "operator running (webhook :9443, controller)". */
  summary: string;
  /** Indented lines printed under the step (status, pod fields, rows). */
  details?: string[];
}

/** A step failed; `detail` is extra context to print under the ✗ line (e.g. a log tail). */
export class StepFailure extends Error {
  readonly detail: string;
  constructor(message: string, detail = '') {
    super(message);
    this.detail = detail;
  }
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

/**
 * Runs step `number` with a time limit, so a hung part fails the demo instead of hanging it,
 * and prints its line. Rethrows the step's error after printing it.
 */
export async function step(
  number: number,
  title: string,
  run: () => Promise<StepResult>,
  timeoutMs = 60_000,
): Promise<void> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${title}: no result after ${seconds(timeoutMs)}`)),
          timeoutMs,
        );
      }),
    ]);
    const elapsed = seconds(performance.now() - started);
    process.stdout.write(`✓ ${number}/${TOTAL_STEPS} ${result.summary}  ${elapsed}\n`);
    for (const line of result.details ?? []) process.stdout.write(`      ${line}\n`);
  } catch (error) {
    const elapsed = seconds(performance.now() - started);
    const message = error instanceof Error ? error.message : String(error);
    process.stdout.write(`✗ ${number}/${TOTAL_STEPS} ${title}: ${message}  ${elapsed}\n`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Wall time since `startedAt` (a Date.now() value), for the closing line. */
export const wallTime = (startedAt: number): string => seconds(Date.now() - startedAt);

/** Polls `read` until `ok` accepts its value; throws `describe(last value)` when `timeoutMs` passes. */
export async function waitFor<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  describe: (last: T) => string,
  timeoutMs = 60_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(describe(value));
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
