// Pacing of ARM writes that never holds a controller worker for long. A write first takes its
// identity's token, then its subscription's (token-bucket.ts). When the wait for either is longer
// than `maxInlineWaitMs`, the write is not slept on: the token stays reserved for it as a ticket
// (keyed by what the write is, e.g. identity + FIC name) and the caller gets the wait back, to
// hand to the work queue as a retry-after. The work queue then serves other keys meanwhile, and
// when the key comes back its ticket is due, so it neither queues again nor wakes in a herd with
// every other paced key (each ticket is its own slot in the bucket's order).
//
// Before this, a write slept in the worker for the identity's whole interval (4 s at Azure's
// 0.25/s per identity) while holding the identity's lock: with 4 workers, 1,000 FIC writes over 100
// identities ran at about 1 write/s whatever the subscription allowed (docs/benchmarks.md). Pure:
// the caller passes the clock.
import { KeyedTokenBuckets, type RateLimit } from './token-bucket.ts';

export type Admission =
  /** Go after sleeping `sleepMs` (at most maxInlineWaitMs). */
  | { go: true; sleepMs: number }
  /** Come back in `retryAfterMs`; the slot is kept for `ticket` until then (and a grace after). */
  | { go: false; retryAfterMs: number };

interface Ticket {
  stage: 'identity' | 'subscription';
  /** When the reserved token is due (ms since epoch). */
  dueAt: number;
  /** Forgotten after this: the write was dropped (resource deleted, spec changed). */
  expiresAt: number;
}

export interface WritePacingOptions {
  perIdentity: RateLimit;
  perSubscription: RateLimit;
  /** Longest wait slept in-process; a longer one is handed back. */
  maxInlineWaitMs: number;
  /** How long a ticket outlives its due time before it is forgotten. */
  ticketGraceMs?: number;
}

export class WritePacing {
  readonly #identities: KeyedTokenBuckets;
  readonly #subscriptions: KeyedTokenBuckets;
  readonly #maxInlineWaitMs: number;
  readonly #graceMs: number;
  readonly #tickets = new Map<string, Ticket>();
  /** Identity → no write before this: one interval after its last write came back. */
  readonly #notBefore = new Map<string, number>();
  readonly #identityIntervalMs: number;
  #sinceSweep = 0;

  constructor(options: WritePacingOptions) {
    this.#identities = new KeyedTokenBuckets(options.perIdentity);
    this.#subscriptions = new KeyedTokenBuckets(options.perSubscription);
    this.#maxInlineWaitMs = options.maxInlineWaitMs;
    this.#graceMs = options.ticketGraceMs ?? 60_000;
    this.#identityIntervalMs = 1000 / options.perIdentity.perSecond;
  }

  /**
   * Asks to write now. `ticket` names the write (it must be the same when the caller comes back
   * after a hand-back), `identity` and `subscription` the buckets it draws from.
   */
  admit(ticket: string, identity: string, subscription: string, now: number): Admission {
    if (++this.#sinceSweep >= 64) this.#sweep(now);
    const held = this.#tickets.get(ticket);
    if (held && held.dueAt - now > this.#maxInlineWaitMs)
      return { go: false, retryAfterMs: held.dueAt - now };
    if (held?.stage === 'subscription') {
      // Both tokens were reserved before the hand-back.
      const due = Math.max(held.dueAt, this.#notBefore.get(identity) ?? 0);
      if (due - now > this.#maxInlineWaitMs) {
        this.#hold(ticket, 'subscription', due);
        return { go: false, retryAfterMs: due - now };
      }
      this.#tickets.delete(ticket);
      return { go: true, sleepMs: Math.max(0, due - now) };
    }
    // Identity first: only a write that has its identity's token draws on the subscription, so
    // the subscription's token is taken when the write is really about to go.
    let identityDue: number;
    if (held) {
      identityDue = held.dueAt;
    } else {
      identityDue = now + this.#identities.reserve(identity, now);
    }
    identityDue = Math.max(identityDue, this.#notBefore.get(identity) ?? 0);
    if (identityDue - now > this.#maxInlineWaitMs) {
      this.#hold(ticket, 'identity', identityDue);
      return { go: false, retryAfterMs: identityDue - now };
    }
    const subscriptionDue = now + this.#subscriptions.reserve(subscription, now);
    const due = Math.max(identityDue, subscriptionDue);
    if (due - now > this.#maxInlineWaitMs) {
      this.#hold(ticket, 'subscription', due);
      return { go: false, retryAfterMs: due - now };
    }
    this.#tickets.delete(ticket);
    return { go: true, sleepMs: Math.max(0, due - now) };
  }

  /**
   * The identity's write came back (whatever its answer). Azure counts a write when it arrives,
   * and the bucket assumed it left on time: one that left late (a slow event loop, a slow
   * connection) would let the next arrive less than an interval after it, and earn a 429. So the
   * next write on the identity waits a full interval from now, whatever the bucket says.
   */
  completed(identity: string, now: number): void {
    this.#notBefore.set(identity, now + this.#identityIntervalMs);
  }

  /** A server's Retry-After: no token of either bucket is handed out before `until`. */
  pauseUntil(identity: string, subscription: string, until: number, now: number): void {
    this.#identities.pauseUntil(identity, until, now);
    this.#subscriptions.pauseUntil(subscription, until, now);
  }

  /** Tickets held (for tests and metrics). */
  get tickets(): number {
    return this.#tickets.size;
  }

  #hold(ticket: string, stage: Ticket['stage'], dueAt: number): void {
    this.#tickets.set(ticket, { stage, dueAt, expiresAt: dueAt + this.#graceMs });
  }

  #sweep(now: number): void {
    this.#sinceSweep = 0;
    for (const [key, at] of this.#notBefore) if (at < now) this.#notBefore.delete(key);
    for (const [key, ticket] of this.#tickets) if (ticket.expiresAt < now) this.#tickets.delete(key);
  }
}
