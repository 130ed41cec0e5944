import { describe, expect, it } from 'vitest';
import { AzureRetryableError } from '../../../src/azure/arm-errors.ts';
import { backoffDelay, type RetryPolicy, withArmRetries } from '../../../src/azure/arm-retry.ts';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 400, maxWaitMs: 5000 };

function restError(statusCode: number, retryAfter?: string) {
  return {
    statusCode,
    code: statusCode === 409 ? 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity' : 'X',
    message: `status ${statusCode}`,
    response: { headers: { get: (name: string) => (name === 'retry-after' ? retryAfter : undefined) } },
  };
}

/** A fake clock and an attempt that fails with the given errors, then succeeds. */
function harness(failures: unknown[]) {
  const sleeps: number[] = [];
  const events: string[] = [];
  let calls = 0;
  const attempt = async () => {
    calls++;
    const failure = failures.shift();
    if (failure) throw failure;
    return 'ok';
  };
  const hooks = {
    now: () => 0,
    random: () => 0.5,
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
    beforeAttempt: async () => {
      events.push('pace');
    },
    onRetryable: (_f: unknown, delay: number, retrying: boolean) => {
      events.push(`${retrying ? 'retry' : 'give-up'} ${delay}`);
    },
  };
  return { attempt, hooks, sleeps, events, calls: () => calls };
}

describe('backoffDelay', () => {
  it('doubles up to the cap, half fixed and half jittered', () => {
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(n, policy, () => 0))).toEqual([50, 100, 200, 200, 200]);
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(n, policy, () => 1))).toEqual([100, 200, 400, 400, 400]);
  });
});

describe('withArmRetries', () => {
  it('retries 409, 429 and 5xx, paces every attempt, and honours Retry-After over backoff', async () => {
    const h = harness([restError(409), restError(429, '2'), restError(503)]);
    await expect(withArmRetries('PUT x', h.attempt, policy, h.hooks)).resolves.toBe('ok');
    expect(h.calls()).toBe(4);
    expect(h.sleeps).toEqual([75, 2000, 300]);
    expect(h.events).toEqual(['pace', 'retry 75', 'pace', 'retry 2000', 'pace', 'retry 300', 'pace']);
  });

  it('rethrows what retrying cannot fix, at once', async () => {
    for (const status of [400, 401, 403, 404]) {
      const error = restError(status);
      const h = harness([error]);
      await expect(withArmRetries('PUT x', h.attempt, policy, h.hooks)).rejects.toBe(error);
      expect(h.calls()).toBe(1);
    }
  });

  it('gives up after maxAttempts with a retryable error carrying the next wait', async () => {
    const h = harness([restError(409), restError(409), restError(409), restError(409), restError(409)]);
    const error = await withArmRetries('PUT x', h.attempt, policy, h.hooks).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AzureRetryableError);
    expect(error).toMatchObject({ retryAfterMs: 300, statusCode: 409, reason: 'AzureRequestFailed' });
    expect((error as Error).message).toMatch(/PUT x failed after 4 attempt/);
    expect(h.calls()).toBe(4);
    expect(h.events.at(-1)).toBe('give-up 300');
  });

  it('hands a long Retry-After to the caller instead of waiting it out', async () => {
    const h = harness([restError(429, '120')]);
    const error = await withArmRetries('PUT x', h.attempt, policy, h.hooks).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AzureRetryableError);
    expect((error as AzureRetryableError).retryAfterMs).toBe(120_000);
    expect(h.calls()).toBe(1);
    expect(h.sleeps).toEqual([]);
  });
});
