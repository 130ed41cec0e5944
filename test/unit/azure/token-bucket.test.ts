import { describe, expect, it } from 'vitest';
import { KeyedTokenBuckets, TokenBucket } from '../../../src/azure/token-bucket.ts';

describe('TokenBucket', () => {
  it('lets the burst through at once, then spaces reservations at the rate, in order', () => {
    const bucket = new TokenBucket({ perSecond: 2, burst: 3 }, 0);
    expect([0, 0, 0, 0, 0].map(() => bucket.reserve(0))).toEqual([0, 0, 0, 500, 1000]);
  });

  it('refills with time, never beyond the burst', () => {
    const bucket = new TokenBucket({ perSecond: 0.25, burst: 2 }, 0);
    expect(bucket.reserve(0)).toBe(0);
    expect(bucket.reserve(0)).toBe(0);
    expect(bucket.reserve(0)).toBe(4000);
    // At 4 s the queued reservation has used the token that arrived.
    expect(bucket.reserve(4000)).toBe(4000);
    expect(bucket.isIdle(1_000_000)).toBe(true);
    expect([0, 0, 0].map(() => bucket.reserve(1_000_000))).toEqual([0, 0, 4000]);
  });

  it('with the default per-identity pacing, 20 writes on a fresh identity do not wait', () => {
    const bucket = new TokenBucket({ perSecond: 0.25, burst: 20 }, 0);
    const waits = Array.from({ length: 21 }, () => bucket.reserve(0));
    expect(waits.slice(0, 20).every((w) => w === 0)).toBe(true);
    expect(waits[20]).toBe(4000);
  });

  it('a pause holds back every later reservation until it ends, then the rate applies', () => {
    const bucket = new TokenBucket({ perSecond: 1, burst: 5 }, 0);
    bucket.pauseUntil(3000, 0);
    expect(bucket.reserve(0)).toBe(3000);
    expect(bucket.reserve(0)).toBe(4000);
    expect(bucket.reserve(3000)).toBe(2000);
  });

  it('a pause never adds tokens, and a pause in the past changes nothing', () => {
    const bucket = new TokenBucket({ perSecond: 1, burst: 1 }, 0);
    expect(bucket.reserve(0)).toBe(0);
    bucket.pauseUntil(500, 0);
    expect(bucket.reserve(0)).toBe(1000);
    const other = new TokenBucket({ perSecond: 1, burst: 2 }, 0);
    other.pauseUntil(0, 10);
    expect(other.reserve(10)).toBe(0);
  });

  it('refuses a rate or burst that could never hand out a token', () => {
    expect(() => new TokenBucket({ perSecond: 0, burst: 1 }, 0)).toThrow(RangeError);
    expect(() => new TokenBucket({ perSecond: 1, burst: 0.5 }, 0)).toThrow(RangeError);
  });
});

describe('KeyedTokenBuckets', () => {
  it('keeps keys apart', () => {
    const buckets = new KeyedTokenBuckets({ perSecond: 1, burst: 1 });
    expect(buckets.reserve('a', 0)).toBe(0);
    expect(buckets.reserve('b', 0)).toBe(0);
    expect(buckets.reserve('a', 0)).toBe(1000);
    buckets.pauseUntil('b', 5000, 0);
    expect(buckets.reserve('b', 0)).toBe(5000);
  });

  it('forgets idle buckets as new keys arrive', () => {
    const buckets = new KeyedTokenBuckets({ perSecond: 10, burst: 1 });
    for (let i = 0; i < 1000; i++) buckets.reserve(`id-${i}`, i * 1000);
    expect(buckets.size).toBeLessThan(300);
  });
});
