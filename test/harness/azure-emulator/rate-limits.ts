// Client-visible ARM write throttling (off unless configured): token buckets per identity and per
// subscription, refilled continuously, as Azure throttles FIC writes (2/s per subscription,
// 0.25/s per identity in production; tests pick their own rates).
import type { RateLimits } from './config.ts';

interface Bucket {
  tokens: number;
  updatedAt: number;
  rate: number;
}

export class WriteThrottle {
  readonly #buckets = new Map<string, Bucket>();

  /**
   * Takes one write from both buckets if both have one. Returns undefined when allowed, else the
   * seconds until a retry can succeed (for Retry-After).
   */
  take(limits: RateLimits, subscriptionId: string, identityKey: string, now: number): number | undefined {
    const wanted: Bucket[] = [];
    if (limits.perSubscriptionWritesPerSecond) {
      wanted.push(
        this.#bucket(`sub:${subscriptionId.toLowerCase()}`, limits.perSubscriptionWritesPerSecond, now),
      );
    }
    if (limits.perIdentityWritesPerSecond) {
      wanted.push(this.#bucket(`id:${identityKey.toLowerCase()}`, limits.perIdentityWritesPerSecond, now));
    }
    let waitSeconds = 0;
    for (const bucket of wanted) {
      if (bucket.tokens < 1) waitSeconds = Math.max(waitSeconds, (1 - bucket.tokens) / bucket.rate);
    }
    if (waitSeconds > 0) return Math.max(1, Math.ceil(waitSeconds));
    for (const bucket of wanted) bucket.tokens -= 1;
    return undefined;
  }

  reset(): void {
    this.#buckets.clear();
  }

  #bucket(key: string, rate: number, now: number): Bucket {
    // Burst capacity: one second's worth, at least one write.
    const capacity = Math.max(1, rate);
    let bucket = this.#buckets.get(key);
    if (!bucket || bucket.rate !== rate) {
      bucket = { tokens: capacity, updatedAt: now, rate };
      this.#buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.updatedAt) / 1000) * rate);
    bucket.updatedAt = now;
    return bucket;
  }
}
