// Refused grants as the user reads them (issue 13 §2): which SQLSTATEs are refusals, each refused
// object with its owner, and advice that matches Azure's documentation of azure_pg_admin.
import { describe, expect, it } from 'vitest';
import type { PlannedStatement } from '../../../src/postgres/grant-plan.ts';
import {
  type AdminFacts,
  describeRefusal,
  GrantNotPermittedError,
  type GrantRefusal,
  grantNotPermittedMessage,
  isRefusalCode,
  mergeRefusals,
  refusalOf,
} from '../../../src/postgres/grant-refusals.ts';
import type { ConcretePrivilege, ObjectKind } from '../../../src/postgres/privilege-set.ts';
import { isPrincipalValidationFailure } from '../../../src/postgres/roles.ts';

const statement = (
  kind: ObjectKind,
  schema: string,
  name: string,
  privileges: ConcretePrivilege[],
  action: 'grant' | 'revoke' = 'grant',
): PlannedStatement => ({
  action,
  database: 'orders',
  scope: kind === 'database' ? 'cluster' : 'database',
  sql: '…',
  entries: privileges.map((privilege) => ({
    role: 'reports',
    database: 'orders',
    kind,
    schema,
    name,
    privilege,
  })),
});
const membership: PlannedStatement = {
  action: 'grant',
  database: 'orders',
  scope: 'cluster',
  sql: 'GRANT "auditors" TO "reports"',
  membership: { role: 'reports', group: 'auditors' },
};
const AZURE: AdminFacts = { role: 'ea-admin', azurePgAdmin: true };

describe('isRefusalCode', () => {
  it.each([
    ['42501', true],
    ['01007', true],
    ['01006', true],
    ['01000', false],
    ['42P01', false],
    [undefined, false],
  ])('%s → %s', (code, refused) => {
    expect(isRefusalCode(code)).toBe(refused);
  });
});

describe('refusalOf and describeRefusal', () => {
  it('names the privileges, the object, its database and owner, and what PostgreSQL said', () => {
    const refusal = refusalOf(
      statement('table', 'app', 'ledger', ['SELECT', 'INSERT']),
      '42501',
      'permission denied for table ledger',
      'azuresu',
    );
    expect(refusal).toMatchObject({
      action: 'grant',
      role: 'reports',
      object: { kind: 'table', database: 'orders', schema: 'app', name: 'ledger' },
      privileges: ['SELECT', 'INSERT'],
      owner: 'azuresu',
    });
    expect(describeRefusal(refusal)).toBe(
      'SELECT, INSERT on table "app"."ledger" in database "orders" (owner "azuresu"): permission denied for table ledger',
    );
  });

  it.each<[PlannedStatement, string | undefined, string, string]>([
    [
      statement('database', '', 'orders', ['CREATE']),
      'postgres',
      'no privileges were granted for "orders"',
      'CREATE on database "orders" (owner "postgres"): no privileges were granted for "orders"',
    ],
    [
      statement('schema', 'app', '', ['USAGE']),
      'vendor',
      'no privileges were granted for "app"',
      'USAGE on schema "app" in database "orders" (owner "vendor"): no privileges were granted for "app"',
    ],
    [
      statement('sequence', 'app', 's', ['USAGE']),
      undefined,
      'permission denied for sequence s',
      'USAGE on sequence "app"."s" in database "orders": permission denied for sequence s',
    ],
    [
      statement('table', 'app', 't', ['SELECT'], 'revoke'),
      'x',
      'no privileges could be revoked for "t"',
      'revoking SELECT on table "app"."t" in database "orders" (owner "x"): no privileges could be revoked for "t"',
    ],
    [
      membership,
      undefined,
      'permission denied to grant role "auditors"',
      'membership in role "auditors": permission denied to grant role "auditors"',
    ],
  ])('%#: %s', (planned, owner, message, described) => {
    expect(describeRefusal(refusalOf(planned, '01007', message, owner))).toBe(described);
  });

  it('merges the privileges of one object refused one by one', () => {
    const merged = mergeRefusals([
      refusalOf(
        statement('table', 'app', 'p', ['INSERT']),
        '01007',
        'no privileges were granted for "p"',
        'o',
      ),
      refusalOf(statement('table', 'app', 'q', ['SELECT']), '42501', 'permission denied for table q', 'o'),
      refusalOf(
        statement('table', 'app', 'p', ['UPDATE']),
        '01007',
        'no privileges were granted for "p"',
        'o',
      ),
    ]);
    expect(merged.map(describeRefusal)).toEqual([
      'INSERT, UPDATE on table "app"."p" in database "orders" (owner "o"): no privileges were granted for "p"',
      'SELECT on table "app"."q" in database "orders" (owner "o"): permission denied for table q',
    ]);
  });
});

describe('grantNotPermittedMessage', () => {
  const ledger = refusalOf(
    statement('table', 'app', 'ledger', ['SELECT']),
    '42501',
    'permission denied for table ledger',
    'azuresu',
  );

  it('on Azure: the admin is in azure_pg_admin, whose members may manage any non-restricted role’s objects', () => {
    const message = grantNotPermittedMessage('reports', [ledger], AZURE);
    expect(message).toBe(
      'role "reports": not permitted: SELECT on table "app"."ledger" in database "orders" (owner "azuresu"): ' +
        'permission denied for table ledger. The operator\'s admin role "ea-admin" is a member of azure_pg_admin; on ' +
        'Azure its members may manage roles and access objects owned by any non-restricted role, so an owner it is ' +
        'refused on is a restricted role (such as azuresu): grant on objects your own roles own, or remove these ' +
        'from spec.grants. On a server without azure_pg_admin, the owner grants "ea-admin" these privileges WITH ' +
        'GRANT OPTION, or membership in the owner role. What was granted is in force and recorded in ' +
        'status.applied; the controller retries.',
    );
  });

  it('an admin outside azure_pg_admin is told to be the Entra admin; a group needs ADMIN OPTION', () => {
    const group = refusalOf(membership, '42501', 'permission denied to grant role "auditors"');
    const message = grantNotPermittedMessage('reports', [group], { role: 'ea-admin', azurePgAdmin: false });
    expect(message).toContain('"ea-admin" is not a member of azure_pg_admin: on Azure, spec.adminRole');
    expect(message).toContain(
      'a role holding ADMIN OPTION on the group grants it to "ea-admin" WITH ADMIN OPTION',
    );
    expect(message).not.toContain('WITH GRANT OPTION');
  });

  it('lists at most 8 objects, counts the rest, and says the same for the same refusals', () => {
    const many: GrantRefusal[] = Array.from({ length: 11 }, (_, i) =>
      refusalOf(
        statement('table', 'app', `t${i}`, ['SELECT']),
        '42501',
        `permission denied for table t${i}`,
        'azuresu',
      ),
    );
    const message = grantNotPermittedMessage('reports', many, AZURE);
    expect(message).toContain('"app"."t7"');
    expect(message).not.toContain('"app"."t8"');
    expect(message).toContain('; and 3 more.');
    expect(grantNotPermittedMessage('reports', [...many], AZURE)).toBe(message);
  });

  it('as an error (all or nothing): reason GrantNotPermitted, and nothing changed in the database', () => {
    const error = new GrantNotPermittedError('orders', [ledger], AZURE);
    expect(error.reason).toBe('GrantNotPermitted');
    expect(error.message).toMatch(/^role "reports": not permitted: SELECT on table "app"\."ledger"/);
    expect(error.message).toContain('Nothing was changed in database "orders"; the controller retries.');
  });
});

describe('isPrincipalValidationFailure', () => {
  const failure = (code: string, message: string) => Object.assign(new Error(message), { code });
  it.each([
    ['XX000', 'Could not validate AAD user 1b2c… because its name is not found in the tenant.', true],
    ['XX000', 'Could not validate AAD user 1b2c… because of an incorrect object type for "service"', true],
    ['XX000', 'An unexpected error occurred while trying to validate user.', true],
    ['XX000', 'tuple concurrently updated', false],
    ['42710', 'role "x" already exists', false],
  ])('%s %s → %s', (code, message, expected) => {
    expect(isPrincipalValidationFailure(failure(code, message))).toBe(expected);
  });
});
