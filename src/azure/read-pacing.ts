// Pacing of ARM reads, a little under the rates Azure documents for user-assigned identities
// (docs/design.md §6): GET (the identity, or one of its FICs) 0.5/s per identity, 10/s per
// subscription, 30/s per tenant; LIST of an identity's FICs 0.25/s per identity, 5/s per
// subscription, 15/s per tenant. Past them Azure answers 429, and every reconcile of every resource
// on the identity or subscription waits out the Retry-After. The reads that remain after the
// caches (identity-cache.ts, fic-list-cache.ts) are few, but a start-up or a resync still sends
// them in bursts: this spreads them instead.
//
// A read takes a slot from its identity's bucket, then its subscription's, then the process's (one
// process works in one tenant: its credential's), each stage only once the one before is due, so
// a read queued behind its identity does not hold a subscription slot it cannot use yet (reads of
// other identities would then arrive together when they all come due). The caller waits for each
// slot with its worker given back (src/util/worker-slot.ts). Pure: the caller passes the clock.
import { KeyedTokenBuckets, type RateLimit } from './token-bucket.ts';

export type ReadKind = 'get' | 'list';
export type ReadScope = 'identity' | 'subscription' | 'tenant';

export interface ReadLimits {
  perIdentity: RateLimit;
  perSubscription: RateLimit;
  perTenant: RateLimit;
}

export type ReadPacingOptions = Record<ReadKind, ReadLimits>;

/**
 * 90 % of Azure's rates: a read paced exactly at the limit reaches Azure early whenever the network
 * or the event loop jitters (the write pacing measured this: 54 × 429 in the quick benchmark with
 * exact rates). Per identity the burst is 1 and the next read also waits a full interval after the
 * previous one came back (see `completed`). Per subscription and tenant the burst is a second's
 * worth, under Azure's own bucket of a second's worth, because other clients (Terraform, the
 * portal, other clusters) share those budgets.
 */
export const DEFAULT_READ_PACING: ReadPacingOptions = {
  get: {
    perIdentity: { perSecond: 0.45, burst: 1 },
    perSubscription: { perSecond: 9, burst: 9 },
    perTenant: { perSecond: 27, burst: 27 },
  },
  list: {
    perIdentity: { perSecond: 0.225, burst: 1 },
    perSubscription: { perSecond: 4.5, burst: 4 },
    perTenant: { perSecond: 13.5, burst: 13 },
  },
};

const SCOPES: readonly ReadScope[] = ['identity', 'subscription', 'tenant'];

export class ReadPacing {
  readonly #buckets: Record<ReadKind, Record<ReadScope, KeyedTokenBuckets>>;
  readonly #intervalMs: Record<ReadKind, number>;
  /** `${kind}/${identity}` → no read before this: one interval after its last read came back. */
  readonly #notBefore = new Map<string, number>();
  #sinceSweep = 0;

  constructor(options: ReadPacingOptions = DEFAULT_READ_PACING) {
    const buckets = (limits: ReadLimits): Record<ReadScope, KeyedTokenBuckets> => ({
      identity: new KeyedTokenBuckets(limits.perIdentity),
      subscription: new KeyedTokenBuckets(limits.perSubscription),
      tenant: new KeyedTokenBuckets(limits.perTenant),
    });
    this.#buckets = { get: buckets(options.get), list: buckets(options.list) };
    this.#intervalMs = {
      get: 1000 / options.get.perIdentity.perSecond,
      list: 1000 / options.list.perIdentity.perSecond,
    };
  }

  /** The stages a read goes through, in order. */
  static readonly scopes = SCOPES;

  /**
   * Takes the read's slot at `scope` (`key`: the identity's or subscription's key; any constant for
   * the tenant) and returns the milliseconds until it is due (0 = now).
   */
  reserve(kind: ReadKind, scope: ReadScope, key: string, now: number): number {
    if (++this.#sinceSweep >= 256) this.#sweep(now);
    const wait = this.#buckets[kind][scope].reserve(key, now);
    if (scope !== 'identity') return wait;
    const notBefore = this.#notBefore.get(`${kind}/${key}`) ?? 0;
    return Math.max(wait, Math.ceil(notBefore - now));
  }

  /**
   * A read on `identity` came back (whatever its answer). Azure counts a read when it arrives, and
   * the bucket assumed it left on time: the next read of the identity waits a full interval from
   * now, so one that left late cannot bring the next one in early.
   */
  completed(kind: ReadKind, identity: string, now: number): void {
    this.#notBefore.set(`${kind}/${identity}`, now + this.#intervalMs[kind]);
  }

  /** A 429's Retry-After: no read of this kind on the identity or its subscription before `until`. */
  pauseUntil(kind: ReadKind, identity: string, subscription: string, until: number, now: number): void {
    this.#buckets[kind].identity.pauseUntil(identity, until, now);
    this.#buckets[kind].subscription.pauseUntil(subscription, until, now);
  }

  #sweep(now: number): void {
    this.#sinceSweep = 0;
    for (const [key, at] of this.#notBefore) if (at < now) this.#notBefore.delete(key);
  }
}
