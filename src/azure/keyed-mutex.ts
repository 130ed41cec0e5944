// At most one task at a time per key, in arrival order. Azure answers a second concurrent FIC
// write on one identity with 409, so every write on an identity runs under its key.
// Keys are forgotten when their last task ends, so the map only holds identities being written.
import { unlessAborted, waitOffWorker } from '../util/worker-slot.ts';

export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous ? previous.then(() => done) : done;
    this.#tails.set(key, tail);
    // The previous holder may wait a while (a paced write): wait for it off the worker, and stop
    // waiting when the queue shuts down (our turn is given up; the order of the rest holds).
    if (previous) {
      try {
        await waitOffWorker((signal) => unlessAborted(previous, signal));
      } catch (error) {
        release();
        void tail.then(() => {
          if (this.#tails.get(key) === tail) this.#tails.delete(key);
        });
        throw error;
      }
    }
    try {
      return await task();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  /** Keys with a task running or queued. */
  get size(): number {
    return this.#tails.size;
  }
}
