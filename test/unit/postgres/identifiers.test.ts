import { describe, expect, it } from 'vitest';
import {
  assertManageableRole,
  InvalidIdentifierError,
  InvalidPrivilegeError,
  identifierProblem,
  MAX_IDENTIFIER_BYTES,
  privilegeKeyword,
  privilegeList,
  quoteIdentifier,
  quoteQualified,
  ReservedRoleError,
} from '../../../src/postgres/identifiers.ts';

/** What PostgreSQL's lexer reads back from a quoted identifier: the one name, or a sign of escape. */
function unquote(quoted: string): string {
  expect(quoted.startsWith('"') && quoted.endsWith('"')).toBe(true);
  const inner = quoted.slice(1, -1);
  // Inside, every quote must be doubled; a single one would end the identifier early.
  expect(inner.replaceAll('""', '')).not.toContain('"');
  return inner.replaceAll('""', '"');
}

describe('quoteIdentifier', () => {
  it.each([
    ['plain', 'orders', '"orders"'],
    ['mixed case (kept: quoted names do not fold)', 'Orders', '"Orders"'],
    ['hyphen and dollar', 'orders-api$1', '"orders-api$1"'],
    ['a double quote', 'a"b', '"a""b"'],
    ['only quotes', '""', '""""""'],
    ['a statement break-out', 'x"; DROP TABLE orders; --', '"x""; DROP TABLE orders; --"'],
    ['a comment opener', 'a/*b', '"a/*b"'],
    ['single quotes', "it's", '"it\'s"'],
    ['a backslash', 'a\\b', '"a\\b"'],
    ['a newline', 'a\nb', '"a\nb"'],
    ['unicode', 'Bestellungen_ü_注文', '"Bestellungen_ü_注文"'],
    ['an emoji', 'orders🚀', '"orders🚀"'],
    ['a keyword', 'select', '"select"'],
    ['spaces', '  ', '"  "'],
  ])('quotes %s', (_, name, quoted) => {
    expect(quoteIdentifier(name)).toBe(quoted);
    expect(unquote(quoteIdentifier(name))).toBe(name);
  });

  it.each([
    ['empty', '', /empty/],
    ['a NUL', 'a\0b', /NUL/],
    ['64 ASCII bytes', 'a'.repeat(64), /64 bytes long/],
    ['22 three-byte characters (66 bytes)', '注'.repeat(22), /66 bytes long/],
    ['an unpaired surrogate', 'a\uD800b', /surrogate/],
  ])('refuses %s', (_, name, message) => {
    expect(() => quoteIdentifier(name)).toThrow(InvalidIdentifierError);
    expect(() => quoteIdentifier(name)).toThrow(message);
    expect(identifierProblem(name)).toBeDefined();
  });

  it('accepts exactly 63 bytes, in ASCII or not', () => {
    expect(quoteIdentifier('a'.repeat(MAX_IDENTIFIER_BYTES))).toHaveLength(65);
    expect(unquote(quoteIdentifier('注'.repeat(21)))).toBe('注'.repeat(21));
  });

  it('counts bytes after quote doubling is undone (the stored name is what counts)', () => {
    expect(() => quoteIdentifier('"'.repeat(63))).not.toThrow();
  });

  it('quotes both parts of a qualified name', () => {
    expect(quoteQualified('my"schema', 'tab;le')).toBe('"my""schema"."tab;le"');
    expect(() => quoteQualified('', 't')).toThrow(InvalidIdentifierError);
  });
});

describe('privilegeKeyword', () => {
  it.each([
    ['database', 'CONNECT', 'CONNECT'],
    ['database', 'TEMPORARY', 'TEMPORARY'],
    ['schema', 'USAGE', 'USAGE'],
    ['tables', 'MAINTAIN', 'MAINTAIN'],
    ['sequences', 'UPDATE', 'UPDATE'],
    ['tables', 'ALL', 'ALL PRIVILEGES'],
  ] as const)('passes %s %s', (target, privilege, keyword) => {
    expect(privilegeKeyword(target, privilege)).toBe(keyword);
  });

  it.each([
    ['tables', 'CONNECT'],
    ['database', 'SELECT'],
    ['schema', 'SELECT'],
    ['sequences', 'INSERT'],
    ['tables', 'select'],
    ['tables', 'SELECT, INSERT'],
    ['tables', 'SELECT ON TABLE x TO PUBLIC; --'],
    ['tables', ''],
    ['tables', 'EXECUTE'],
  ] as const)('refuses %s %j', (target, privilege) => {
    expect(() => privilegeKeyword(target, privilege)).toThrow(InvalidPrivilegeError);
  });

  it('joins a checked list, and refuses an empty one', () => {
    expect(privilegeList('tables', ['SELECT', 'INSERT'])).toBe('SELECT, INSERT');
    expect(() => privilegeList('tables', [])).toThrow(InvalidPrivilegeError);
    expect(() => privilegeList('tables', ['SELECT', 'DROP'])).toThrow(InvalidPrivilegeError);
  });
});

describe('assertManageableRole', () => {
  it.each([
    'postgres',
    'PUBLIC',
    'pg_read_all_data',
    'azure_pg_admin',
    'Azure_SU',
    'azuresu',
    'current_user',
  ])('refuses the reserved %s', (role) => {
    expect(() => assertManageableRole(role)).toThrow(ReservedRoleError);
  });

  it.each(['orders-api', 'postgres_app', 'my_pg_role', 'x"; DROP ROLE postgres; --'])(
    'accepts %s',
    (role) => {
      expect(() => assertManageableRole(role)).not.toThrow();
    },
  );
});
