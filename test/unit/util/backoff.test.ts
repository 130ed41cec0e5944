import { describe, expect, it } from 'vitest';
import {
  BackoffCounter,
  type BackoffPolicy,
  checkBackoffPolicy,
  equalJitter,
  exponentialDelayMs,
  KeyedBackoff,
} from '../../../src/util/backoff.ts';

// The schedules the code base uses, so a change to the helper that moves any of them shows here.
const WORK_QUEUE: BackoffPolicy = { baseDelayMs: 5, maxDelayMs: 1_000_000 };
const ARM: BackoffPolicy = { baseDelayMs: 500, maxDelayMs: 8_000 };
const ONE_TO_THIRTY_S: BackoffPolicy = { baseDelayMs: 1000, maxDelayMs: 30_000 };
const CERTIFICATES: BackoffPolicy = { baseDelayMs: 1000, maxDelayMs: 60_000 };

describe('exponentialDelayMs', () => {
  it.each<[string, BackoffPolicy, number[]]>([
    ['work queue: 5 ms doubling to 1000 s', WORK_QUEUE, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560]],
    ['ARM: 0.5 s doubling to 8 s', ARM, [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000]],
    [
      'server retry, informer restart, object watch: 1 s to 30 s',
      ONE_TO_THIRTY_S,
      [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000, 30_000],
    ],
    [
      'certificate passes: 1 s to 60 s',
      CERTIFICATES,
      [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000],
    ],
    ['a cap equal to the base never grows', { baseDelayMs: 7, maxDelayMs: 7 }, Array(10).fill(7)],
  ])('%s: retries 0..9', (_name, policy, expected) => {
    expect(expected.map((_, retry) => exponentialDelayMs(retry, policy))).toEqual(expected);
  });

  it.each<[string, number, number]>([
    ['the work queue reaches its cap at retry 18', 18, 1_000_000],
    ['retry 17 is still below it', 17, 655_360],
    ['2 ** 1023 is finite and far past the cap', 1023, 1_000_000],
    ['2 ** 1024 is Infinity: still the cap', 1024, 1_000_000],
    ['a huge count', 1e9, 1_000_000],
    ['an infinite count', Number.POSITIVE_INFINITY, 1_000_000],
    ['a negative count is the first retry', -3, 5],
    ['NaN is the first retry, not a NaN timer', Number.NaN, 5],
    ['a fraction rounds down', 2.9, 20],
  ])('%s', (_name, retry, expected) => {
    expect(exponentialDelayMs(retry, WORK_QUEUE)).toBe(expected);
  });
});

describe('equalJitter', () => {
  it.each<[number, number, number]>([
    // [delay, random(), result]: half fixed, half scaled by random().
    [1000, 0, 500],
    [1000, 0.5, 750],
    [1000, 0.999_999, 1000],
    [8000, 0.25, 5000],
    [5, 0, 3], // 2.5 rounds up
    [5, 0.5, 4], // 3.75
    [0, 0.7, 0],
  ])('of %i ms with random() = %f is %i ms', (delay, random, expected) => {
    expect(equalJitter(delay, () => random)).toBe(expected);
  });

  it('stays within [delay / 2, delay] for any random() in [0, 1)', () => {
    for (const delay of [1, 2, 500, 8000, 30_000]) {
      for (let i = 0; i <= 100; i += 1) {
        const jittered = equalJitter(delay, () => i / 101);
        expect(jittered).toBeGreaterThanOrEqual(Math.floor(delay / 2));
        expect(jittered).toBeLessThanOrEqual(delay);
      }
    }
  });

  it('uses Math.random without an injected one', () => {
    const jittered = equalJitter(1000);
    expect(jittered).toBeGreaterThanOrEqual(500);
    expect(jittered).toBeLessThanOrEqual(1000);
  });
});

describe('checkBackoffPolicy', () => {
  it.each<[string, BackoffPolicy]>([
    ['a zero base', { baseDelayMs: 0, maxDelayMs: 10 }],
    ['a negative base', { baseDelayMs: -1, maxDelayMs: 10 }],
    ['a NaN base', { baseDelayMs: Number.NaN, maxDelayMs: 10 }],
    ['a cap below the base', { baseDelayMs: 10, maxDelayMs: 5 }],
    ['a NaN cap', { baseDelayMs: 10, maxDelayMs: Number.NaN }],
  ])('rejects %s', (_name, policy) => {
    expect(() => checkBackoffPolicy(policy)).toThrow('backoff needs 0 < baseDelayMs <= maxDelayMs');
    expect(() => new BackoffCounter(policy)).toThrow();
    expect(() => new KeyedBackoff(policy)).toThrow();
  });

  it('returns a sound policy as it is', () => {
    expect(checkBackoffPolicy(ARM)).toBe(ARM);
  });
});

describe('BackoffCounter', () => {
  it('doubles per failure, caps, and starts over after reset()', () => {
    const counter = new BackoffCounter(ONE_TO_THIRTY_S);
    expect(counter.failures).toBe(0);
    expect([1, 2, 3, 4, 5, 6, 7].map(() => counter.next())).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000,
    ]);
    expect(counter.failures).toBe(7);
    counter.reset();
    expect(counter.failures).toBe(0);
    expect([counter.next(), counter.next()]).toEqual([1000, 2000]);
  });
});

describe('KeyedBackoff', () => {
  it('counts each key apart, caps, and forget() starts a key over', () => {
    const backoff = new KeyedBackoff({ baseDelayMs: 5, maxDelayMs: 40 });
    expect([1, 2, 3, 4, 5, 6].map(() => backoff.when('a'))).toEqual([5, 10, 20, 40, 40, 40]);
    expect(backoff.retries('a')).toBe(6);
    expect(backoff.when('b')).toBe(5);
    expect(backoff.retries('b')).toBe(1);
    backoff.forget('a');
    expect(backoff.retries('a')).toBe(0);
    expect(backoff.when('a')).toBe(5);
    expect(backoff.retries('b')).toBe(1);
  });

  it('knows nothing of a key it never saw, and forgetting one is harmless', () => {
    const backoff = new KeyedBackoff(WORK_QUEUE);
    expect(backoff.retries('never')).toBe(0);
    backoff.forget('never');
    expect(backoff.when('never')).toBe(5);
  });
});
