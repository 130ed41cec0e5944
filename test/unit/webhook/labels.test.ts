import { describe, expect, it } from 'vitest';
import {
  isValidLabelKey,
  isValidLabelValue,
  labelKeyError,
  labelValueError,
  parseLabelList,
} from '../../../src/webhook/policy/labels.ts';

const name63 = `a${'b'.repeat(61)}c`;
const dnsLabel63 = 'd'.repeat(63);
const prefix253 = [dnsLabel63, dnsLabel63, dnsLabel63, 'e'.repeat(61)].join('.');

describe('label keys', () => {
  it.each([
    'app',
    'a',
    '9',
    'app.kubernetes.io/name',
    'azure.workload.identity/use',
    'example.com/Some_Name-1.x',
    'A_b.C-d',
    'constructor',
    name63,
    `${prefix253}/x`,
    `x/${name63}`,
    'a-b.c/d',
  ])('%j is valid', (key) => {
    expect(labelKeyError(key)).toBeUndefined();
    expect(isValidLabelKey(key)).toBe(true);
  });

  it.each([
    ['', /name part must not be empty/],
    ['prefix/', /name part must not be empty/],
    ['/name', /empty prefix/],
    ['a/b/c', /at most one '\/'/],
    [`${name63}x`, /at most 63 characters \(has 64\)/],
    [`${prefix253}x/name`, /longer than 253 characters/],
    ['Example.com/name', /not a DNS subdomain/],
    ['-example.com/name', /not a DNS subdomain/],
    ['example..com/name', /not a DNS subdomain/],
    ['example_com/name', /not a DNS subdomain/],
    ['-app', /must consist of alphanumeric/],
    ['app-', /must consist of alphanumeric/],
    ['_app', /must consist of alphanumeric/],
    ['app.', /must consist of alphanumeric/],
    ['has space', /must consist of alphanumeric/],
    ['tëam', /must consist of alphanumeric/],
    ['k=v', /must consist of alphanumeric/],
  ])('%j is invalid (%s)', (key, why) => {
    const error = labelKeyError(key);
    expect(error).toMatch(why);
    expect(error).toContain(`"${key}"`);
    expect(isValidLabelKey(key)).toBe(false);
  });
});

describe('label values', () => {
  it.each(['', 'true', 'v1.2.3', 'A_b-C.d', name63])('%j is valid', (value) => {
    expect(labelValueError(value)).toBeUndefined();
    expect(isValidLabelValue(value)).toBe(true);
  });

  it.each([
    [`${name63}x`, /at most 63 characters/],
    ['-x', /must consist of alphanumeric/],
    ['x.', /must consist of alphanumeric/],
    ['a/b', /must consist of alphanumeric/],
    ['a b', /must consist of alphanumeric/],
  ])('%j is invalid (%s)', (value, why) => {
    expect(labelValueError(value)).toMatch(why);
    expect(isValidLabelValue(value)).toBe(false);
  });
});

describe('parseLabelList', () => {
  it.each<[string, string, Record<string, string>, RegExp[]]>([
    ['empty text', '', {}, []],
    ['blank text', '   ', {}, []],
    ['one entry', 'team=orders', { team: 'orders' }, []],
    [
      'several entries, prefixed key',
      'team=orders,example.com/tier=gold',
      { team: 'orders', 'example.com/tier': 'gold' },
      [],
    ],
    ['whitespace and empty entries ignored', ' a = 1 , ,b=2,', { a: '1', b: '2' }, []],
    ['empty value allowed', 'flag=', { flag: '' }, []],
    ['no = is an error', 'a=1,oops', { a: '1' }, [/entry "oops": expected key=value/]],
    [
      'bad key is an error naming the entry',
      'Bad Key=x,a=1',
      { a: '1' },
      [/entry "Bad Key=x": key "Bad Key"/],
    ],
    ['bad value is an error', 'a=-x-', {}, [/entry "a=-x-": value "-x-"/]],
    ['value with = is an error', 'a=b=c', {}, [/entry "a=b=c": value "b=c"/]],
    ['empty key is an error', '=x', {}, [/entry "=x": key "": name part must not be empty/]],
    ['same key, same value twice is fine', 'a=1,a=1', { a: '1' }, []],
    [
      'same key, different values: reported and dropped',
      'a=1,b=2,a=3,a=4',
      { b: '2' },
      [/entry "a=3": key "a" is also given as "1"; neither value is applied/],
    ],
    ['several errors, one each', 'x,y,z=1', { z: '1' }, [/"x"/, /"y"/]],
    ['a key like an Object.prototype member', 'constructor=x', { constructor: 'x' }, []],
  ])('%s', (_name, text, labels, errors) => {
    const result = parseLabelList(text);
    expect(result.labels).toEqual(labels);
    expect(result.errors).toHaveLength(errors.length);
    errors.forEach((pattern, i) => {
      expect(result.errors[i]).toMatch(pattern);
    });
  });
});
