// ARM's token-bucket throttling (config.ts ARM_REQUEST_LIMITS, on by default) for the
// Microsoft.Authorization routes: for reads, writes and deletes, one bucket per subscription and
// calling principal, and a global one per subscription (15 times as large, across principals). A
// request passes only when every bucket it draws from has a token; else 429 with Retry-After in
// whole seconds. Pure: the caller passes the clock.
import { ARM_GLOBAL_LIMIT_FACTOR, type ArmRequestLimits, type ArmRequestOperation } from './config.ts';

interface Bucket {
  tokens: number;
  updatedAt: number;
  size: number;
  rate: number;
}

export type ArmAdmission =
  | { allowed: true }
  | { allowed: false; retryAfterSeconds: number; by: `${ArmRequestOperation}/${'perPrincipal' | 'global'}` };

export class ArmRequestThrottle {
  readonly #buckets = new Map<string, Bucket>();

  take(
    operation: ArmRequestOperation,
    limits: ArmRequestLimits,
    keys: { subscription: string; principal: string },
    now: number,
  ): ArmAdmission {
    const limit = limits[operation];
    if (!limit) return { allowed: true };
    const sub = keys.subscription.toLowerCase();
    const wanted = [
      {
        scope: 'perPrincipal' as const,
        bucket: this.#bucket(
          `${operation}/${sub}/${keys.principal.toLowerCase()}`,
          limit.bucketSize,
          limit.refillPerSecond,
          now,
        ),
      },
      {
        scope: 'global' as const,
        bucket: this.#bucket(
          `${operation}/${sub}`,
          limit.bucketSize * ARM_GLOBAL_LIMIT_FACTOR,
          limit.refillPerSecond * ARM_GLOBAL_LIMIT_FACTOR,
          now,
        ),
      },
    ];
    let wait = 0;
    let by: 'perPrincipal' | 'global' | undefined;
    for (const { scope, bucket } of wanted) {
      if (bucket.tokens >= 1) continue;
      const seconds = (1 - bucket.tokens) / bucket.rate;
      if (seconds > wait) {
        wait = seconds;
        by = scope;
      }
    }
    if (by)
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(wait)), by: `${operation}/${by}` };
    for (const { bucket } of wanted) bucket.tokens -= 1;
    return { allowed: true };
  }

  reset(): void {
    this.#buckets.clear();
  }

  #bucket(key: string, size: number, rate: number, now: number): Bucket {
    let bucket = this.#buckets.get(key);
    if (!bucket || bucket.size !== size || bucket.rate !== rate) {
      bucket = { tokens: size, updatedAt: now, size, rate };
      this.#buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(size, bucket.tokens + ((now - bucket.updatedAt) / 1000) * rate);
    bucket.updatedAt = now;
    return bucket;
  }
}
