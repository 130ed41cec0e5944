// At most one task at a time per key, in arrival order. Azure answers a second concurrent FIC
// write on one identity with 409, so every write on an identity runs under its key.
// Keys are forgotten when their last task ends, so the map only holds identities being written.

export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => done);
    this.#tails.set(key, tail);
    await previous;
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
