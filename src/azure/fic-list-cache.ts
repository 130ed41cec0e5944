// One list of an identity's FICs, shared. Azure allows 0.25 LISTs per second per identity; before
// this every reconcile listed (twice when it wrote), so a burst of reconciles on one identity (a
// start-up, a resync, ten resources created together) asked for many times that at once.
//
// - While a LIST of an identity is in flight, everyone who needs one joins it (`pending`).
// - A list is reused by every caller that accepts its age (`fresh(key, now, maxAgeMs)`): the
//   caller says how old a list it can act on (managed-identities.ts: LIST_SHARING_WINDOW_MS for a
//   decision that writes nothing, LIST_WRITE_WINDOW_MS for a write under the identity's lock).
// - Our own writes are applied to it (`put`, `remove`): a FIC this process created is in the list
//   from the moment Azure said so, and one it deleted is gone. A write that lands while a LIST is
//   in flight is applied again to that list when it arrives, so a LIST sent before the write
//   cannot take it back out.
// - When Azure disagrees with the list (it refuses a write as a duplicate or over the limit, or
//   the identity is gone), the list is dropped (`forget`), and a LIST in flight then is neither
//   kept nor joined: the next caller lists afresh.
// What a shared list cannot see is a change by another writer (Terraform, the portal, another
// cluster) made after it was read: that is seen at most the caller's window later. Pure: the
// caller passes the clock.
import type { ExistingFic } from './fic-plan.ts';

export interface ListedFics {
  fics: ExistingFic[];
  /** When the LIST these came from was sent (ms since epoch): their age counts from here. */
  listedAt: number;
}

/** What a LIST read returns: the FICs and when the request went out. */
export interface ListRead {
  fics: ExistingFic[];
  sentAt: number;
}

type Change = { put: ExistingFic } | { remove: string };

interface Entry {
  /** By lower-cased name: ARM names are case-insensitive. */
  fics: Map<string, ExistingFic>;
  listedAt: number;
}

interface InFlight {
  promise: Promise<ListedFics>;
  /** Our writes since it started, applied to its answer when it arrives. */
  changes: Change[];
}

function apply(fics: Map<string, ExistingFic>, change: Change): void {
  if ('put' in change) fics.set(change.put.name.toLowerCase(), { ...change.put });
  else fics.delete(change.remove.toLowerCase());
}

export class SharedFicLists {
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, InFlight>();
  #sinceSweep = 0;

  /** The list held for `key` if it was read no more than `maxAgeMs` before `now`. */
  fresh(key: string, now: number, maxAgeMs: number): ListedFics | undefined {
    const entry = this.#entries.get(key);
    if (!entry || now - entry.listedAt > maxAgeMs) return undefined;
    return { fics: [...entry.fics.values()].map((fic) => ({ ...fic })), listedAt: entry.listedAt };
  }

  /** The LIST in flight for `key`, if any (and not dropped by `forget`). */
  pending(key: string): Promise<ListedFics> | undefined {
    return this.#inFlight.get(key)?.promise;
  }

  /** Registers `read` as the LIST in flight for `key`; its answer becomes the list held. */
  track(key: string, read: Promise<ListRead>): Promise<ListedFics> {
    const flight: InFlight = { promise: undefined as unknown as Promise<ListedFics>, changes: [] };
    flight.promise = read.then(
      (answer) => {
        const fics = new Map(answer.fics.map((fic) => [fic.name.toLowerCase(), { ...fic }] as const));
        for (const change of flight.changes) apply(fics, change);
        if (this.#inFlight.get(key) === flight) {
          this.#inFlight.delete(key);
          this.#remember(key, { fics, listedAt: answer.sentAt });
        }
        return { fics: [...fics.values()].map((fic) => ({ ...fic })), listedAt: answer.sentAt };
      },
      (error: unknown) => {
        if (this.#inFlight.get(key) === flight) this.#inFlight.delete(key);
        throw error;
      },
    );
    this.#inFlight.set(key, flight);
    return flight.promise;
  }

  /** Azure created or updated `fic` for us. */
  put(key: string, fic: ExistingFic): void {
    this.#change(key, { put: fic });
  }

  /** Azure deleted FIC `name` for us (or told us it was not there). */
  remove(key: string, name: string): void {
    this.#change(key, { remove: name });
  }

  /** The list may be wrong (Azure refused a write it allowed, the identity is gone): drop it. */
  forget(key: string): void {
    this.#entries.delete(key);
    this.#inFlight.delete(key);
  }

  /** Lists held (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  #change(key: string, change: Change): void {
    const entry = this.#entries.get(key);
    if (entry) apply(entry.fics, change);
    this.#inFlight.get(key)?.changes.push(change);
  }

  #remember(key: string, entry: Entry): void {
    // Lists older than a few minutes are of no use to anyone: forget them now and then, so
    // identities no resource names any more do not stay in memory.
    if (++this.#sinceSweep >= 256) {
      this.#sinceSweep = 0;
      for (const [k, held] of this.#entries)
        if (entry.listedAt - held.listedAt > 10 * 60_000) this.#entries.delete(k);
    }
    this.#entries.set(key, entry);
  }
}
