// Client-visible ARM throttling, as Azure documents it for user-assigned identities (config.ts
// AZURE_RATE_LIMITS, on by default): for each operation (create or update, get, list, delete) a
// token bucket per tenant, per subscription and per resource (the managed identity), refilled
// continuously. A request passes only if every bucket that applies to it has a token; else it is
// answered 429 with a Retry-After of the seconds until all of them will. Pure: the caller passes
// the clock.
import type { OperationLimit, ThrottledOperation } from './config.ts';

interface Bucket {
  tokens: number;
  updatedAt: number;
  rate: number;
}

/** Which buckets a request draws from. */
export interface ThrottleKeys {
  tenant: string;
  subscription: string;
  /** The managed identity's ARM id. */
  resource: string;
}

/** The limit a refused request ran into, for the counters: e.g. `list/perResource`. */
export type ThrottledBy = `${ThrottledOperation}/${keyof OperationLimit}`;

export type Admission = { allowed: true } | { allowed: false; retryAfterSeconds: number; by: ThrottledBy };

export class RequestThrottle {
  readonly #buckets = new Map<string, Bucket>();

  /**
   * Takes one token of `operation` from each bucket `limit` sets, if each has one (a refused
   * request takes none).
   */
  take(
    operation: ThrottledOperation,
    limit: OperationLimit | undefined,
    keys: ThrottleKeys,
    now: number,
  ): Admission {
    if (!limit) return { allowed: true };
    const wanted: Array<{ bucket: Bucket; scope: keyof OperationLimit }> = [];
    const scopes: Array<[keyof OperationLimit, string]> = [
      ['perTenant', keys.tenant],
      ['perSubscription', keys.subscription],
      ['perResource', keys.resource],
    ];
    for (const [scope, key] of scopes) {
      const rate = limit[scope];
      if (rate)
        wanted.push({ bucket: this.#bucket(`${operation}/${scope}/${key.toLowerCase()}`, rate, now), scope });
    }
    let waitSeconds = 0;
    let by: keyof OperationLimit | undefined;
    for (const { bucket, scope } of wanted) {
      if (bucket.tokens >= 1) continue;
      const wait = (1 - bucket.tokens) / bucket.rate;
      if (wait > waitSeconds) {
        waitSeconds = wait;
        by = scope;
      }
    }
    if (by)
      return {
        allowed: false,
        retryAfterSeconds: Math.max(1, Math.ceil(waitSeconds)),
        by: `${operation}/${by}`,
      };
    for (const { bucket } of wanted) bucket.tokens -= 1;
    return { allowed: true };
  }

  reset(): void {
    this.#buckets.clear();
  }

  #bucket(key: string, rate: number, now: number): Bucket {
    // Burst capacity: one second's worth, at least one request.
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
