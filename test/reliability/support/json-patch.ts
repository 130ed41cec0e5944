// A minimal, strict RFC 6902 applier (add, replace, remove) over RFC 6901 pointers, for checking
// the webhook's patches against the object it was sent. Strict like the apiserver's
// (evanphx/json-patch): a missing parent, an out-of-range index, a bad escape or an unknown op
// throws, so a patch that would be refused in a real cluster fails the test. No JSON Patch
// library is a dependency of the project, hence this one.

export type JsonPatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

export class PatchError extends Error {
  override name = 'PatchError';
}

/** The unescaped reference tokens of a JSON Pointer; `''` is the whole document. */
export function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`pointer ${JSON.stringify(path)} does not start with /`);
  return path
    .slice(1)
    .split('/')
    .map((token) => {
      if (/~[^01]|~$/.test(token)) throw new PatchError(`pointer ${JSON.stringify(path)} has a bad ~ escape`);
      return token.replaceAll('~1', '/').replaceAll('~0', '~');
    });
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function arrayIndex(token: string, length: number, forAdd: boolean): number {
  if (forAdd && token === '-') return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token))
    throw new PatchError(`array index ${JSON.stringify(token)} is invalid`);
  const index = Number(token);
  if (index > length || (!forAdd && index === length))
    throw new PatchError(`array index ${index} out of range (length ${length})`);
  return index;
}

function parentOf(doc: unknown, tokens: string[], path: string): unknown {
  let current = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(current)) current = current[arrayIndex(token, current.length, false)];
    else if (isObject(current) && Object.hasOwn(current, token)) current = current[token];
    else throw new PatchError(`${path}: parent ${JSON.stringify(token)} does not exist`);
  }
  return current;
}

/** Applies `patch` to a deep copy of `doc` and returns the result; throws PatchError. */
export function applyPatch<T>(doc: T, patch: readonly JsonPatchOperation[]): T {
  let root: unknown = structuredClone(doc);
  for (const operation of patch) {
    if (!isObject(operation) || typeof operation.path !== 'string')
      throw new PatchError(`not an operation: ${JSON.stringify(operation)}`);
    const { op, path } = operation;
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw new PatchError(`unsupported op ${op}`);
    if ((op === 'add' || op === 'replace') && !Object.hasOwn(operation, 'value'))
      throw new PatchError(`${op} ${path} has no value`);
    const tokens = parsePointer(path);
    if (tokens.length === 0) {
      if (op === 'remove') throw new PatchError('cannot remove the whole document');
      root = structuredClone((operation as { value: unknown }).value);
      continue;
    }
    const parent = parentOf(root, tokens, path);
    const last = tokens.at(-1)!;
    if (Array.isArray(parent)) {
      const index = arrayIndex(last, parent.length, op === 'add');
      if (op === 'add') parent.splice(index, 0, structuredClone(operation.value));
      else if (op === 'replace') parent[index] = structuredClone(operation.value);
      else parent.splice(index, 1);
    } else if (isObject(parent)) {
      if (op !== 'add' && !Object.hasOwn(parent, last))
        throw new PatchError(`${op} ${path}: ${JSON.stringify(last)} does not exist`);
      if (op === 'remove') delete parent[last];
      else
        Object.defineProperty(parent, last, {
          value: structuredClone(operation.value),
          enumerable: true,
          writable: true,
          configurable: true,
        });
    } else {
      throw new PatchError(`${op} ${path}: the parent is not an object or array`);
    }
  }
  return root as T;
}

/**
 * Paths (as pointers) of values in `before` that `after` lost or changed, skipping any path for
 * which `allowed` returns true. Objects must keep every key; arrays every item at its index (items
 * may be appended). Empty when `after` only adds to `before`.
 */
export function lostOrChanged(
  before: unknown,
  after: unknown,
  allowed: (path: string) => boolean = () => false,
  path = '',
): string[] {
  if (allowed(path)) return [];
  if (Array.isArray(before)) {
    if (!Array.isArray(after) || after.length < before.length) return [path || '/'];
    return before.flatMap((item, i) => lostOrChanged(item, after[i], allowed, `${path}/${i}`));
  }
  if (isObject(before)) {
    if (!isObject(after)) return [path || '/'];
    return Object.keys(before).flatMap((key) => {
      const child = `${path}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      if (Object.hasOwn(after, key)) return lostOrChanged(before[key], after[key], allowed, child);
      return allowed(child) ? [] : [child];
    });
  }
  return Object.is(before, after) ? [] : [path || '/'];
}
