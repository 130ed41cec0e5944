// The test-only JSON Patch applier must itself be right, or the idempotence checks prove nothing.
import { describe, expect, it } from 'vitest';
import type { PatchOperation } from '../../../src/webhook/policy/types.ts';
import { applyPatch } from './apply-patch.ts';

describe('applyPatch (test helper, RFC 6902 subset)', () => {
  const doc = { a: { 'b/c': 1, 'd~e': 2 }, list: [1, 2] };

  it.each<[string, PatchOperation[], unknown]>([
    [
      'add to an object',
      [{ op: 'add', path: '/a/x', value: 3 }],
      { a: { 'b/c': 1, 'd~e': 2, x: 3 }, list: [1, 2] },
    ],
    [
      'add on an existing member replaces it',
      [{ op: 'add', path: '/a/b~1c', value: 9 }],
      { a: { 'b/c': 9, 'd~e': 2 }, list: [1, 2] },
    ],
    [
      'append with -',
      [{ op: 'add', path: '/list/-', value: 3 }],
      { a: { 'b/c': 1, 'd~e': 2 }, list: [1, 2, 3] },
    ],
    [
      'insert at an index',
      [{ op: 'add', path: '/list/0', value: 0 }],
      { a: { 'b/c': 1, 'd~e': 2 }, list: [0, 1, 2] },
    ],
    [
      'replace an escaped key',
      [{ op: 'replace', path: '/a/d~0e', value: 5 }],
      { a: { 'b/c': 1, 'd~e': 5 }, list: [1, 2] },
    ],
    ['remove an escaped key', [{ op: 'remove', path: '/a/b~1c' }], { a: { 'd~e': 2 }, list: [1, 2] }],
  ])('%s', (_name, patch, expected) => {
    expect(applyPatch(doc, patch)).toEqual(expected);
    expect(doc).toEqual({ a: { 'b/c': 1, 'd~e': 2 }, list: [1, 2] });
  });

  it.each<[string, PatchOperation]>([
    ['a missing parent', { op: 'add', path: '/missing/x', value: 1 }],
    ['an index past the end', { op: 'add', path: '/list/5', value: 1 }],
    ['replacing a missing member', { op: 'replace', path: '/a/zzz', value: 1 }],
    ['removing a missing member', { op: 'remove', path: '/a/zzz' }],
    ['a path without a leading slash', { op: 'add', path: 'a', value: 1 }],
  ])('rejects %s', (_name, operation) => {
    expect(() => applyPatch(doc, [operation])).toThrow();
  });
});
