import { describe, expect, it } from 'vitest';
import { APPEND, escapeToken, pointer, unescapeToken } from '../../../src/webhook/policy/json-pointer.ts';

describe('escapeToken', () => {
  it.each([
    ['azure.workload.identity/use', 'azure.workload.identity~1use'],
    ['entra-access.io/workload-identity', 'entra-access.io~1workload-identity'],
    ['a~b', 'a~0b'],
    // `~` first, or `/` would turn into `~1` and then into `~01`.
    ['~/', '~0~1'],
    ['~1', '~01'],
    ['plain', 'plain'],
    ['', ''],
  ])('%j → %j, and back', (raw, escaped) => {
    expect(escapeToken(raw)).toBe(escaped);
    expect(unescapeToken(escaped)).toBe(raw);
  });

  it('takes array indexes as numbers', () => {
    expect(escapeToken(0)).toBe('0');
  });
});

describe('pointer', () => {
  it.each<[Array<string | number>, string]>([
    [[], ''],
    [['metadata', 'labels', 'azure.workload.identity/use'], '/metadata/labels/azure.workload.identity~1use'],
    [['spec', 'containers', 2, 'env', APPEND], '/spec/containers/2/env/-'],
    [['metadata', 'annotations', ''], '/metadata/annotations/'],
  ])('%j → %j', (tokens, expected) => {
    expect(pointer(...tokens)).toBe(expected);
  });
});
