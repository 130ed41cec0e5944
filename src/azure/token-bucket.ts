// Client-side pacing of ARM writes: token buckets keyed by identity or subscription. Pure (the
// caller passes the clock), so the arithmetic is unit-tested without waiting.
//
// `reserve` hands out a token even when none is left, returning how long the caller must wait for
// it (tokens go negative): callers queue in reservation order, and a burst of requests is spread at
// the configured rate instead of polling. `pauseUntil` applies a server's Retry-After, so after a
// 429 every later reservation waits for it too rather than earning another 429.

export interface RateLimit {
  /** Sustained rate. */
  perSecond: number;
  /** Tokens a bucket holds when idle: writes that may go at once before the rate applies. */
  burst: number;
}

export class TokenBucket {
  readonly #limit: RateLimit;
  #tokens: number;
  #updatedAt: number;

  constructor(limit: RateLimit, now: number) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) {
      throw new RangeError(`rate limit needs perSecond > 0 and burst >= 1, got ${JSON.stringify(limit)}`);
    }
    this.#limit = limit;
    this.#tokens = limit.burst;
    this.#updatedAt = now;
  }

  #refill(now: number): void {
    if (now > this.#updatedAt) {
      this.#tokens = Math.min(
        this.#limit.burst,
        this.#tokens + ((now - this.#updatedAt) / 1000) * this.#limit.perSecond,
      );
      this.#updatedAt = now;
    }
  }

  /** Takes one token; returns the milliseconds to wait before using it (0 = now). */
  reserve(now: number): number {
    this.#refill(now);
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#limit.perSecond) * 1000);
  }

  /** No token is handed out for use before `until` (ms since epoch). */
  pauseUntil(until: number, now: number): void {
    this.#refill(now);
    if (until <= now) return;
    // The next reservation must find exactly one token at `until`.
    this.#tokens = Math.min(this.#tokens, 1 - ((until - now) / 1000) * this.#limit.perSecond);
  }

  /** True when the bucket is back to full, i.e. it holds no state worth keeping. */
  isIdle(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.#limit.burst;
  }
}

/** One bucket per key, made on first use, forgotten once idle (so the map does not grow forever). */
export class KeyedTokenBuckets {
  readonly #limit: RateLimit;
  readonly #buckets = new Map<string, TokenBucket>();
  #sinceSweep = 0;

  constructor(limit: RateLimit) {
    this.#limit = limit;
  }

  #bucket(key: string, now: number): TokenBucket {
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (++this.#sinceSweep >= 256) this.#sweep(now);
      bucket = new TokenBucket(this.#limit, now);
      this.#buckets.set(key, bucket);
    }
    return bucket;
  }

  #sweep(now: number): void {
    this.#sinceSweep = 0;
    for (const [key, bucket] of this.#buckets) if (bucket.isIdle(now)) this.#buckets.delete(key);
  }

  reserve(key: string, now: number): number {
    return this.#bucket(key, now).reserve(now);
  }

  pauseUntil(key: string, until: number, now: number): void {
    this.#bucket(key, now).pauseUntil(until, now);
  }

  get size(): number {
    return this.#buckets.size;
  }
}
