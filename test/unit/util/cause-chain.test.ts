import { describe, expect, it } from 'vitest';
import { causeChain, findInCauseChain, someInCauseChain } from '../../../src/util/cause-chain.ts';

const tagged = (tag: string, cause?: unknown) => Object.assign(new Error(tag), { tag }, { cause });
const hasTag = (tag: string) => (e: object) => (e as { tag?: unknown }).tag === tag;

const inner = tagged('inner');
const middle = tagged('middle', inner);
const outer = tagged('outer', middle);

const selfLoop: { tag: string; cause?: unknown } = { tag: 'self' };
selfLoop.cause = selfLoop;
const loopA: { tag: string; cause?: unknown } = { tag: 'a' };
const loopB = { tag: 'b', cause: loopA };
loopA.cause = loopB;
const wrappedLoop = tagged('wrapper', loopA);

describe('causeChain', () => {
  it.each<[string, unknown, string[]]>([
    ['an error without a cause', inner, ['inner']],
    ['a three-deep chain, outermost first', outer, ['outer', 'middle', 'inner']],
    ['a chain ending in a primitive cause', tagged('top', 'a string cause'), ['top']],
    ['a plain object', { tag: 'plain', cause: { tag: 'below' } }, ['plain', 'below']],
    ['an object that is its own cause, once', selfLoop, ['self']],
    ['a two-object cycle, each once', loopA, ['a', 'b']],
    ['a cycle below the top', wrappedLoop, ['wrapper', 'a', 'b']],
  ])('%s', (_name, error, tags) => {
    expect([...causeChain(error)].map((e) => (e as { tag: string }).tag)).toEqual(tags);
  });

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'boom'],
    ['a number', 42],
  ])('is empty for %s', (_name, error) => {
    expect([...causeChain(error)]).toEqual([]);
  });
});

describe('findInCauseChain', () => {
  it.each<[string, unknown, string, object | undefined]>([
    ['the error itself', outer, 'outer', outer],
    ['one level down', outer, 'middle', middle],
    ['the bottom of the chain', outer, 'inner', inner],
    ['nothing matching', outer, 'absent', undefined],
    ['not above the starting point', middle, 'outer', undefined],
    ['inside a cycle', wrappedLoop, 'b', loopB],
    ['nothing in a cycle, without looping', wrappedLoop, 'absent', undefined],
    ['nothing in a self-cycle, without looping', selfLoop, 'absent', undefined],
    ['nothing in a primitive', 'outer', 'outer', undefined],
  ])('finds %s', (_name, error, tag, expected) => {
    expect(findInCauseChain(error, hasTag(tag))).toBe(expected);
  });

  it('returns the first match, outermost first', () => {
    const first = Object.assign(new Error('first'), { code: 'X' });
    const second = Object.assign(new Error('second'), { code: 'X' });
    first.cause = second;
    expect(findInCauseChain(first, (e) => (e as { code?: unknown }).code === 'X')).toBe(first);
  });

  it('narrows the type through a type guard', () => {
    const error = new Error('wrapper', { cause: Object.assign(new Error('429'), { retryAfterMs: 1500 }) });
    const carrier = findInCauseChain(
      error,
      (e): e is { retryAfterMs: number } =>
        typeof (e as { retryAfterMs?: unknown }).retryAfterMs === 'number',
    );
    expect(carrier?.retryAfterMs).toBe(1500);
  });

  it('calls the predicate once per object, in order', () => {
    const visited: string[] = [];
    findInCauseChain(wrappedLoop, (e) => {
      visited.push((e as { tag: string }).tag);
      return false;
    });
    expect(visited).toEqual(['wrapper', 'a', 'b']);
  });
});

describe('someInCauseChain', () => {
  it.each<[string, unknown, string, boolean]>([
    ['the error itself', outer, 'outer', true],
    ['a cause', outer, 'inner', true],
    ['nothing matching', outer, 'absent', false],
    ['inside a cycle', wrappedLoop, 'a', true],
    ['nothing in a cycle', wrappedLoop, 'absent', false],
    ['a primitive', 'inner', 'inner', false],
    ['undefined', undefined, 'inner', false],
  ])('%s', (_name, error, tag, expected) => {
    expect(someInCauseChain(error, hasTag(tag))).toBe(expected);
  });
});
