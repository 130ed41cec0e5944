// status.applied.grants written by an operator from before the rename of the grant field `on` to
// `target` (src/controller/database.ts, appliedGrants): read as if it said `target`, so the first
// reconcile after an upgrade revokes exactly what that operator granted, re-grants nothing, and a
// deletion can still take everything back. Pure: the planner against a catalog snapshot.
import { describe, expect, it } from 'vitest';
import type { Grant } from '../../../src/api/types.ts';
import { appliedGrants } from '../../../src/controller/database.ts';
import { type AccessRecord, planGrants } from '../../../src/postgres/grant-plan.ts';
import { InvalidPrivilegeError } from '../../../src/postgres/identifiers.ts';
import type { PrivilegeEntry, PrivilegeSnapshot } from '../../../src/postgres/privilege-set.ts';

const ROLE = 'orders-api';
const DB = 'orders';

/** What the old operator wrote: the spec's grants, with `on`. */
const OLD_STATUS_GRANTS = [
  { on: 'database', privileges: ['CONNECT'] },
  { on: 'schema', schema: 'app', privileges: ['USAGE'] },
  { on: 'tables', schema: 'app', tables: ['orders'], privileges: ['SELECT'] },
  { on: 'tables', schema: 'app', tables: ['payments'], privileges: ['SELECT'] },
] as unknown as Grant[];

const CONNECT: Grant = { target: 'database', privileges: ['CONNECT'] };
const USAGE: Grant = { target: 'schema', schema: 'app', privileges: ['USAGE'] };
const READ_ORDERS: Grant = { target: 'tables', schema: 'app', tables: ['orders'], privileges: ['SELECT'] };

const entry = (
  kind: PrivilegeEntry['kind'],
  schema: string,
  name: string,
  privilege: string,
): PrivilegeEntry => ({ role: ROLE, database: DB, kind, schema, name, privilege }) as PrivilegeEntry;

/** The server holds what the old operator granted. */
const snapshot: PrivilegeSnapshot = {
  role: ROLE,
  database: DB,
  schemas: ['app'],
  groups: [],
  serverVersionNum: 170005,
  roleExists: true,
  databaseExists: true,
  existingSchemas: ['app'],
  existingGroups: [],
  memberOf: [],
  relations: [
    { schema: 'app', name: 'orders', kind: 'table' },
    { schema: 'app', name: 'payments', kind: 'table' },
  ],
  held: [
    entry('database', '', DB, 'CONNECT'),
    entry('schema', 'app', '', 'USAGE'),
    entry('table', 'app', 'orders', 'SELECT'),
    entry('table', 'app', 'payments', 'SELECT'),
  ],
};

const record = (grants: Grant[]): AccessRecord => ({ role: ROLE, database: DB, memberOf: [], grants });
const sqlOf = (desired: Grant[], applied: Grant[]): string[] =>
  planGrants({ desired: record(desired), applied: record(applied), snapshots: [snapshot] }).statements.map(
    (s) => s.sql,
  );

describe('status.applied.grants from before the rename of on to target', () => {
  it('reads on as target, and leaves grants that say target as they are', () => {
    expect(appliedGrants(OLD_STATUS_GRANTS)).toEqual([
      CONNECT,
      USAGE,
      READ_ORDERS,
      { target: 'tables', schema: 'app', tables: ['payments'], privileges: ['SELECT'] },
    ]);
    expect(appliedGrants([CONNECT])[0]).toBe(CONNECT);
    // Both keys (never written by an operator): target wins, on is dropped.
    expect(appliedGrants([{ ...CONNECT, on: 'schema' } as unknown as Grant])).toEqual([CONNECT]);
    expect(appliedGrants(undefined)).toEqual([]);
  });

  it('plans nothing when the spec did not change: no revoke, no re-grant', () => {
    const spec = appliedGrants(OLD_STATUS_GRANTS);
    expect(sqlOf(spec, appliedGrants(OLD_STATUS_GRANTS))).toEqual([]);
  });

  it('revokes exactly the grant removed from the spec meanwhile', () => {
    expect(sqlOf([CONNECT, USAGE, READ_ORDERS], appliedGrants(OLD_STATUS_GRANTS))).toEqual([
      'REVOKE SELECT ON TABLE "app"."payments" FROM "orders-api"',
    ]);
  });

  it('lets a deletion revoke everything the old operator granted', () => {
    expect(sqlOf([], appliedGrants(OLD_STATUS_GRANTS))).toEqual([
      'REVOKE SELECT ON TABLE "app"."orders", "app"."payments" FROM "orders-api"',
      'REVOKE USAGE ON SCHEMA "app" FROM "orders-api"',
      'REVOKE CONNECT ON DATABASE "orders" FROM "orders-api"',
    ]);
  });

  it('could not be planned at all without it', () => {
    expect(() => sqlOf([CONNECT], OLD_STATUS_GRANTS)).toThrow(InvalidPrivilegeError);
  });
});
