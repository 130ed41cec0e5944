// Reading the raw request object (untyped JSON) and building additive patches against it. Only
// own properties count: a label named `constructor` must not find Object.prototype.constructor.

import { APPEND, pointer } from './json-pointer.ts';
import type { PatchOperation } from './types.ts';

export type PlainObject = Record<string, unknown>;
export type PathToken = string | number;

export function isPlainObject(value: unknown): value is PlainObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `obj[key]` when it is an own property, else undefined. */
export function own(obj: unknown, key: string): unknown {
  return isPlainObject(obj) && Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** The value at a path of object keys, or undefined when any step is missing. */
export function at(obj: unknown, ...keys: readonly string[]): unknown {
  let current = obj;
  for (const key of keys) current = own(current, key);
  return current;
}

/** A string trimmed, or undefined when it is not a string or blank. */
export function nonBlank(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** `metadata.annotations[key]` of a Kubernetes object when it is a string. */
export function annotation(obj: unknown, key: string): string | undefined {
  const value = own(at(obj, 'metadata', 'annotations'), key);
  return typeof value === 'string' ? value : undefined;
}

/** `metadata.labels` of a Kubernetes object, or an empty object when it has none. */
export function labelsOf(obj: unknown): PlainObject {
  const labels = at(obj, 'metadata', 'labels');
  return isPlainObject(labels) ? labels : {};
}

/** The value at a path of keys and array indexes (own properties only). */
export function valueAt(root: unknown, path: readonly PathToken[]): unknown {
  let current = root;
  for (const token of path) {
    if (typeof token === 'number') current = Array.isArray(current) ? current[token] : undefined;
    else current = own(current, token);
  }
  return current;
}

/**
 * One `add` that puts `value` at `path`, or, when a parent object on the way is missing (or not
 * an object), adds that parent whole with `value` nested inside. Numeric steps index arrays the
 * caller has read, so they always exist.
 */
function addWhole(root: PlainObject, path: readonly PathToken[], value: unknown): PatchOperation {
  let current: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    const token = path[i]!;
    const next = typeof token === 'number' ? (current as unknown[])[token] : own(current, token);
    const fits = typeof path[i + 1] === 'number' ? Array.isArray(next) : isPlainObject(next);
    if (!fits) {
      let nested = value;
      for (let j = path.length - 1; j > i; j--) nested = { [String(path[j])]: nested };
      return { op: 'add', path: pointer(...path.slice(0, i + 1)), value: nested };
    }
    current = next;
  }
  return { op: 'add', path: pointer(...path), value };
}

/**
 * `add` operations that put `entries` into the map at `mapPath`: one per key when the map exists,
 * else one that adds the map (or its missing parent) whole. An `add` on an existing key replaces
 * its value, so callers pass only keys the map lacks or keys they mean to set.
 */
export function addMapEntries(
  root: PlainObject,
  mapPath: readonly PathToken[],
  entries: ReadonlyArray<readonly [string, unknown]>,
): PatchOperation[] {
  if (entries.length === 0) return [];
  if (isPlainObject(valueAt(root, mapPath))) {
    return entries.map(([key, value]) => ({ op: 'add', path: pointer(...mapPath, key), value }));
  }
  return [addWhole(root, mapPath, Object.fromEntries(entries))];
}

/**
 * `add` operations that append `items` to the array at `arrayPath`: one `/-` per item when the
 * array exists, else one that adds the array (or its missing parent) whole. Existing items are
 * never touched.
 */
export function appendItems(
  root: PlainObject,
  arrayPath: readonly PathToken[],
  items: readonly unknown[],
): PatchOperation[] {
  if (items.length === 0) return [];
  if (Array.isArray(valueAt(root, arrayPath))) {
    return items.map((value) => ({ op: 'add', path: pointer(...arrayPath, APPEND), value }));
  }
  return [addWhole(root, arrayPath, [...items])];
}
