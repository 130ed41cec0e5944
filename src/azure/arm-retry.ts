// The one retry loop for ARM calls. The SDK's own retries are switched off (retryOptions
// maxRetries 0) so that retries happen in exactly one place: the SDK would retry a 429 three times
// on its own and then this layer again, multiplying requests into the storm a 429 asks us to stop,
// and it does not retry the 409 Azure gives a concurrent FIC write at all. Here every attempt goes
// through the caller's pacing, a 429 waits out its Retry-After, the number of attempts is bounded,
// and what is left over becomes an AzureRetryableError for the controller's work queue.
import { type BackoffPolicy, equalJitter, exponentialDelayMs } from '../util/backoff.ts';
import { type ArmFailure, AzureRetryableError, classifyArmError, RETRYABLE } from './arm-errors.ts';

/** baseDelayMs is the backoff before the first retry when Azure gives no Retry-After. */
export interface RetryPolicy extends BackoffPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /**
   * The longest single wait done in-process. A longer Retry-After ends the call at once with an
   * AzureRetryableError: the work queue can wait without holding a worker and the identity's lock.
   */
  maxWaitMs: number;
}

/**
 * 6 attempts with 0.5 s → 8 s backoff span about 15 s, enough to outlast a write Azure is still
 * finishing on the identity (the usual cause of a 409) and a short throttling window.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxWaitMs: 30_000,
};

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so callers that
 * failed together spread out but none retries almost immediately.
 */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  return equalJitter(exponentialDelayMs(retry, policy), random);
}

export interface RetryHooks {
  now(): number;
  sleep(ms: number): Promise<void>;
  random?(): number;
  /** Runs before every attempt: pacing of writes. */
  beforeAttempt?(): Promise<void>;
  /** A retryable failure, the wait chosen, and whether another attempt follows. */
  onRetryable?(failure: ArmFailure, delayMs: number, retrying: boolean): void;
}

/** Runs `attempt` until it succeeds, fails for good (rethrown as is), or retries run out. */
export async function withArmRetries<T>(
  operation: string,
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks,
): Promise<T> {
  for (let n = 1; ; n++) {
    await hooks.beforeAttempt?.();
    try {
      return await attempt();
    } catch (error) {
      const failure = classifyArmError(error, hooks.now());
      if (!RETRYABLE.has(failure.kind)) throw error;
      // Azure's Retry-After is authoritative; without it, back off.
      const delay = failure.retryAfterMs ?? backoffDelay(n - 1, policy, hooks.random);
      const retrying = n < policy.maxAttempts && delay <= policy.maxWaitMs;
      hooks.onRetryable?.(failure, delay, retrying);
      if (!retrying) throw new AzureRetryableError(operation, failure, delay, n);
      await hooks.sleep(delay);
    }
  }
}
