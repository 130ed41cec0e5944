// A map from a key to a set of values, each value identified by an id of its own, for indexes
// that file one record under several keys and must find, replace and remove it under each.
export class MultiMap<V> {
  readonly #map = new Map<string, Map<string, V>>();
  readonly #idOf: (value: V) => string;

  constructor(idOf: (value: V) => string) {
    this.#idOf = idOf;
  }

  add(key: string, value: V): void {
    let bucket = this.#map.get(key);
    if (!bucket) {
      bucket = new Map();
      this.#map.set(key, bucket);
    }
    bucket.set(this.#idOf(value), value);
  }

  delete(key: string, value: V): void {
    const bucket = this.#map.get(key);
    if (!bucket) return;
    bucket.delete(this.#idOf(value));
    if (bucket.size === 0) this.#map.delete(key);
  }

  get(key: string): V[] {
    return [...(this.#map.get(key)?.values() ?? [])];
  }

  keys(): string[] {
    return [...this.#map.keys()];
  }
}
