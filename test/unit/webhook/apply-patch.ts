// A small, strict RFC 6902 applier for the policy tests (add, replace, remove; no library for it
// is installed). Strict like the apiserver's: a missing parent, an array index out of range or a
// `replace`/`remove` of a missing member throws, so a wrong path fails the test instead of
// silently creating structure.
import { unescapeToken } from '../../../src/webhook/policy/json-pointer.ts';
import type { PatchOperation } from '../../../src/webhook/policy/types.ts';

function tokens(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path.slice(1).split('/').map(unescapeToken);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function arrayIndex(token: string, length: number, allowEnd: boolean, path: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`${path}: "${token}" is not an array index`);
  const index = Number(token);
  if (index > length || (!allowEnd && index === length))
    throw new Error(`${path}: index ${index} out of range`);
  return index;
}

/** Applies `patch` to a deep copy of `doc` and returns the copy; `doc` is never modified. */
export function applyPatch<T>(doc: T, patch: readonly PatchOperation[]): T {
  let root: unknown = structuredClone(doc);
  for (const operation of patch) {
    const parts = tokens(operation.path);
    const value = 'value' in operation ? structuredClone(operation.value) : undefined;
    if (parts.length === 0) {
      if (operation.op === 'remove') throw new Error('cannot remove the whole document');
      root = value;
      continue;
    }
    let parent: unknown = root;
    for (const part of parts.slice(0, -1)) {
      if (Array.isArray(parent)) parent = parent[arrayIndex(part, parent.length, false, operation.path)];
      else if (isObject(parent) && Object.hasOwn(parent, part)) parent = parent[part];
      else throw new Error(`${operation.path}: parent "${part}" does not exist`);
    }
    const last = parts[parts.length - 1]!;
    if (Array.isArray(parent)) {
      if (operation.op === 'add') {
        const index = last === '-' ? parent.length : arrayIndex(last, parent.length, true, operation.path);
        parent.splice(index, 0, value);
      } else {
        const index = arrayIndex(last, parent.length, false, operation.path);
        if (operation.op === 'remove') parent.splice(index, 1);
        else parent[index] = value;
      }
    } else if (isObject(parent)) {
      if (operation.op !== 'add' && !Object.hasOwn(parent, last)) {
        throw new Error(`${operation.path}: no member "${last}" to ${operation.op}`);
      }
      if (operation.op === 'remove') delete parent[last];
      else parent[last] = value;
    } else {
      throw new Error(`${operation.path}: parent is not a container`);
    }
  }
  return root as T;
}

/** Freezes `value` and everything in it, so a policy that modifies its input throws in the test. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Paths (as JSON Pointers) of every leaf of `original` whose value is not the same in `patched`:
 * an empty list means the patch only added things, removing or changing nothing that was there
 * (unknown fields, a native sidecar's restartPolicy, list order).
 */
export function changedLeaves(original: unknown, patched: unknown, path = ''): string[] {
  if (typeof original !== 'object' || original === null) {
    return Object.is(original, patched) ? [] : [path || '/'];
  }
  if (Array.isArray(original) !== Array.isArray(patched) || typeof patched !== 'object' || patched === null) {
    return [path || '/'];
  }
  const changed: string[] = [];
  for (const [key, child] of Object.entries(original)) {
    const token = key.replaceAll('~', '~0').replaceAll('/', '~1');
    const next = Object.hasOwn(patched, key) ? (patched as Record<string, unknown>)[key] : undefined;
    if (next === undefined && child !== undefined) changed.push(`${path}/${token}`);
    else changed.push(...changedLeaves(child, next, `${path}/${token}`));
  }
  return changed;
}
