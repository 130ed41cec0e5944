// The plan of spec.ownedObjects Reassign (src/postgres/reassign-owned.ts), by table: one
// transaction per database pg_shdepend names, REASSIGN OWNED only where the role owns something,
// DROP OWNED always last, names always quoted, and no plan at all for a reserved target.
import { describe, expect, it } from 'vitest';
import { InvalidIdentifierError, ReservedRoleError } from '../../../src/postgres/identifiers.ts';
import {
  planReassignOwned,
  type RoleDependency,
  reassignHint,
} from '../../../src/postgres/reassign-owned.ts';

const owns = (database: string | null, defaultPrivileges = false): RoleDependency => ({
  database,
  owner: true,
  defaultPrivileges,
});
const holds = (database: string | null): RoleDependency => ({
  database,
  owner: false,
  defaultPrivileges: false,
});

const plan = (dependencies: RoleDependency[], role = 'app', to = 'app_owner') =>
  planReassignOwned({ role, to, dependencies, adminDatabase: 'postgres' });

describe('planReassignOwned', () => {
  it.each([
    { case: 'nothing mentions the role: no transaction at all', dependencies: [], steps: [] },
    {
      case: 'tables in one database: reassign, then drop owned, there only',
      dependencies: [owns('prefect'), owns('prefect'), owns('prefect'), holds('prefect')],
      steps: [
        {
          database: 'prefect',
          reassign: 'REASSIGN OWNED BY "app" TO "app_owner"',
          dropOwned: 'DROP OWNED BY "app"',
          objects: 3,
        },
      ],
    },
    {
      case: 'privileges only (granted by someone else): drop owned revokes them, nothing to reassign',
      dependencies: [holds('reports')],
      steps: [{ database: 'reports', dropOwned: 'DROP OWNED BY "app"', objects: 0 }],
    },
    {
      case: 'default privileges only: reassign (a no-op for data), drop owned removes the entries',
      dependencies: [owns('prefect', true)],
      steps: [
        {
          database: 'prefect',
          reassign: 'REASSIGN OWNED BY "app" TO "app_owner"',
          dropOwned: 'DROP OWNED BY "app"',
          objects: 0,
        },
      ],
    },
    {
      case: 'two databases, in name order, each its own transaction',
      dependencies: [owns('zeta'), holds('alpha'), owns('zeta'), owns('alpha')],
      steps: [
        {
          database: 'alpha',
          reassign: 'REASSIGN OWNED BY "app" TO "app_owner"',
          dropOwned: 'DROP OWNED BY "app"',
          objects: 1,
        },
        {
          database: 'zeta',
          reassign: 'REASSIGN OWNED BY "app" TO "app_owner"',
          dropOwned: 'DROP OWNED BY "app"',
          objects: 2,
        },
      ],
    },
    {
      case: 'a privilege on a database (shared) alone: handled in the admin database',
      dependencies: [holds(null)],
      steps: [{ database: 'postgres', dropOwned: 'DROP OWNED BY "app"', objects: 0 }],
    },
    {
      case: 'a shared object the role owns goes with the first database visited',
      dependencies: [owns(null), holds('b'), holds('a')],
      steps: [
        {
          database: 'a',
          reassign: 'REASSIGN OWNED BY "app" TO "app_owner"',
          dropOwned: 'DROP OWNED BY "app"',
          objects: 1,
        },
        { database: 'b', dropOwned: 'DROP OWNED BY "app"', objects: 0 },
      ],
    },
  ])('$case', ({ dependencies, steps }) => {
    expect(plan(dependencies)).toEqual(steps);
  });

  it('quotes both names, whatever they hold', () => {
    const [step] = plan([owns('db')], 'we"ird; DROP TABLE x; --', 'Owner Role');
    expect(step?.reassign).toBe('REASSIGN OWNED BY "we""ird; DROP TABLE x; --" TO "Owner Role"');
    expect(step?.dropOwned).toBe('DROP OWNED BY "we""ird; DROP TABLE x; --"');
  });

  it.each([['postgres'], ['azure_pg_admin'], ['azuresu'], ['pg_read_all_data'], ['PUBLIC']])(
    'never plans a reassignment to the reserved role %s',
    (to) => {
      expect(() => plan([owns('db')], 'app', to)).toThrow(ReservedRoleError);
    },
  );

  it('never plans for a reserved source role', () => {
    expect(() => plan([owns('db')], 'azure_superuser', 'app_owner')).toThrow(ReservedRoleError);
  });

  it('refuses names PostgreSQL would truncate, and a role reassigned to itself', () => {
    expect(() => plan([owns('db')], 'app', 'x'.repeat(64))).toThrow(InvalidIdentifierError);
    expect(() => plan([owns('db')], 'app', 'app')).toThrow(/cannot be reassigned to itself/);
  });
});

describe('reassignHint', () => {
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

  it.each([
    [
      'the new owner lacks CREATE on the schema',
      pgError('42501', 'permission denied for schema public'),
      /"app_owner" needs CREATE on that schema/,
    ],
    [
      'the admin lacks the privileges of a role',
      pgError('42501', 'permission denied to reassign objects'),
      /needs the privileges of both "app" and "app_owner".*azure_pg_admin/,
    ],
    ['a lock wait timed out', pgError('55P03', 'canceling statement due to lock timeout'), /in use/],
    ['anything else', pgError('XX000', 'boom'), /set spec\.ownedObjects\.policy to Keep/],
  ])('%s', (_, error, says) => {
    expect(reassignHint(error, 'app', 'app_owner')).toMatch(says);
  });
});
