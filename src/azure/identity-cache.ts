// What an ARM GET of a managed identity says, kept: its client, principal and tenant IDs never
// change for the life of the identity (docs/design.md §6), and a GET costs one of the 0.5 reads
// per second Azure allows per identity. Before this every reconcile of every resource did one, so
// 20 resources on an identity resyncing together asked for 40 seconds' worth at once.
//
// Only answers are kept, never failures: a resource naming an identity that does not exist (or no
// longer does) gets its IdentityNotFound from a real GET every time it asks. Two things bound how
// long a kept answer can outlive its identity:
// - any call that finds the identity gone (a 404 on its FIC list or a FIC write) forgets it at
//   once (`forget`), so the next reconcile's GET reports IdentityNotFound;
// - an answer is kept for `ttlMs` only: a name can be deleted and created again (a Terraform
//   replace) with new IDs, and a re-creation between two of our calls shows no 404.
// Callers asking while a GET for the same identity is in flight share it (`pending`). Pure: the
// caller passes the clock.

/** 10 minutes: the default resync period, so a no-change resync rarely pays for a GET. */
export const DEFAULT_IDENTITY_TTL_MS = 10 * 60_000;

interface Entry<T> {
  value: T;
  until: number;
}

export class IdentityCache<T> {
  readonly #ttlMs: number;
  readonly #entries = new Map<string, Entry<T>>();
  readonly #inFlight = new Map<string, Promise<T>>();
  #sinceSweep = 0;

  constructor(ttlMs: number = DEFAULT_IDENTITY_TTL_MS) {
    this.#ttlMs = ttlMs;
  }

  /** The answer kept for `key`, if it has not expired. */
  peek(key: string, now: number): T | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.until > now) return entry.value;
    this.#entries.delete(key);
    return undefined;
  }

  /** The GET in flight for `key`, if any. */
  pending(key: string): Promise<T> | undefined {
    return this.#inFlight.get(key);
  }

  /**
   * Registers `read` as the GET in flight for `key`; its answer is kept from when it arrives
   * (`now()`), unless `forget(key)` was called meanwhile. A failure is passed on, not kept.
   */
  track(key: string, read: Promise<T>, now: () => number): Promise<T> {
    const tracked = read.then(
      (value) => {
        if (this.#inFlight.get(key) === tracked) {
          this.#inFlight.delete(key);
          this.#remember(key, value, now());
        }
        return value;
      },
      (error: unknown) => {
        if (this.#inFlight.get(key) === tracked) this.#inFlight.delete(key);
        throw error;
      },
    );
    this.#inFlight.set(key, tracked);
    return tracked;
  }

  /** The identity is gone, or may be: ask ARM again next time (a GET in flight is not kept). */
  forget(key: string): void {
    this.#entries.delete(key);
    this.#inFlight.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  #remember(key: string, value: T, now: number): void {
    if (++this.#sinceSweep >= 256) {
      this.#sinceSweep = 0;
      for (const [k, entry] of this.#entries) if (entry.until <= now) this.#entries.delete(k);
    }
    this.#entries.set(key, { value, until: now + this.#ttlMs });
  }
}
