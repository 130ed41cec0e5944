// The access controller's retry backoff starts at a floor that suits ARM, not controller-runtime's
// 5 ms (src/controller/component.ts ACCESS_RETRY_BACKOFF).
import { describe, expect, it } from 'vitest';
import { ACCESS_RETRY_BACKOFF } from '../../../src/controller/component.ts';
import { ExponentialBackoff } from '../../../src/controller/workqueue.ts';

describe('ACCESS_RETRY_BACKOFF', () => {
  it('retries a failed reconcile after 1 s, doubling up to 5 minutes', () => {
    const backoff = new ExponentialBackoff(ACCESS_RETRY_BACKOFF);
    const waits = Array.from({ length: 11 }, () => backoff.when('ns/a'));
    expect(waits).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000,
    ]);
  });

  it('fails at most 3 times in its first 5 s, where the default would fail 10 times', () => {
    const failuresWithin = (backoff: ExponentialBackoff, ms: number) => {
      let at = 0;
      let failures = 0;
      while (at <= ms) {
        failures++;
        at += backoff.when('k');
      }
      return failures;
    };
    expect(failuresWithin(new ExponentialBackoff(ACCESS_RETRY_BACKOFF), 5000)).toBe(3);
    expect(failuresWithin(new ExponentialBackoff(), 5000)).toBe(10);
  });
});
