// Exponential backoff, the one formula every retrying loop uses: the work queue's per-key retries,
// ARM calls, server probes, informer restarts, the certificate manager and its watches. Each loop
// keeps its own numbers (a policy); only the arithmetic and the failure counting live here, so a
// fix to either (a cap, an overflow, a reset) reaches every loop at once.
//
// Retries are counted from 0: retry 0 waits `baseDelayMs`, retry n waits base · 2^n, never more
// than `maxDelayMs`.

/** The numbers of one backoff schedule. Callers must keep 0 < baseDelayMs <= maxDelayMs. */
export interface BackoffPolicy {
  /** The wait before the first retry; doubled for each retry after it. */
  baseDelayMs: number;
  /** The longest wait. */
  maxDelayMs: number;
}

/** The delay before retry `retry` (0 for the first): base · 2^retry, capped at the maximum. */
export function exponentialDelayMs(retry: number, policy: BackoffPolicy): number {
  // A negative or NaN count (a caller's off-by-one) means the first retry, not a NaN timer.
  const n = retry > 0 ? Math.floor(retry) : 0;
  // 2 ** n is Infinity from n = 1024 on, and a positive base times Infinity is Infinity, which
  // min() turns into the cap: however long a loop has failed, no overflow and no NaN.
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** n);
}

/**
 * "Equal jitter": half of `delayMs` fixed, half random, so that callers which failed together
 * (one throttling response, one outage) spread out, yet none retries almost at once. `random`
 * returns [0, 1) as Math.random does; tests inject their own.
 */
export function equalJitter(delayMs: number, random: () => number = Math.random): number {
  return Math.round(delayMs / 2 + (random() * delayMs) / 2);
}

/** Throws unless 0 < baseDelayMs <= maxDelayMs: a policy outside that would never back off. */
export function checkBackoffPolicy(policy: BackoffPolicy): BackoffPolicy {
  if (!(policy.baseDelayMs > 0) || !(policy.maxDelayMs >= policy.baseDelayMs))
    throw new Error('backoff needs 0 < baseDelayMs <= maxDelayMs');
  return policy;
}

/** The failures of one retrying loop: each failure waits longer, a success starts over. */
export class BackoffCounter {
  readonly #policy: BackoffPolicy;
  #failures = 0;

  constructor(policy: BackoffPolicy) {
    this.#policy = checkBackoffPolicy(policy);
  }

  /** Counts a failure and returns how long to wait before retrying. */
  next(): number {
    return exponentialDelayMs(this.#failures++, this.#policy);
  }

  /** A success: the next failure waits the base delay again. */
  reset(): void {
    this.#failures = 0;
  }

  /** Failures since the last reset. */
  get failures(): number {
    return this.#failures;
  }
}

/**
 * A BackoffCounter per key (client-go's per-item exponential rate limiter): one key failing
 * does not slow another. forget() drops a key's entry, so keys that recover take no memory.
 */
export class KeyedBackoff {
  readonly #policy: BackoffPolicy;
  readonly #failures = new Map<string, number>();

  constructor(policy: BackoffPolicy) {
    this.#policy = checkBackoffPolicy(policy);
  }

  /** Counts a failure of `key` and returns how long to wait before retrying it. */
  when(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    return exponentialDelayMs(failures, this.#policy);
  }

  /** A success of `key`: its next failure waits the base delay again. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Failures of `key` since it was last forgotten. */
  retries(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}
