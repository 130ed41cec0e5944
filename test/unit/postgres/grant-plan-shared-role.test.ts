// A role shared by several access resources (one role per principal: every resource of one
// identity on one server uses it). Changing or deleting one of them must not revoke what another
// still asks for; before the fix, `revoke = (applied − desired) ∩ held` took it away and the other
// resource, still Ready, lacked it until its next resync (found by test/reliability/faults-*).
import { describe, expect, it } from 'vitest';
import type { Grant } from '../../../src/api/types.ts';
import { type AccessRecord, catalogQueries, planGrants } from '../../../src/postgres/grant-plan.ts';
import type { PrivilegeEntry, PrivilegeSnapshot } from '../../../src/postgres/privilege-set.ts';

const ROLE = 'shop_r0';
const DB = 'shop';

const record = (grants: Grant[], memberOf: string[] = [], database = DB): AccessRecord => ({
  role: ROLE,
  database,
  memberOf,
  grants,
});

const held = (table: string, ...privileges: string[]): PrivilegeEntry[] =>
  privileges.map((privilege) => ({
    role: ROLE,
    database: DB,
    kind: 'table',
    schema: 'public',
    name: table,
    privilege: privilege as PrivilegeEntry['privilege'],
  }));

function snapshot(entries: PrivilegeEntry[], memberOf: string[] = []): PrivilegeSnapshot {
  return {
    role: ROLE,
    database: DB,
    schemas: ['public'],
    groups: ['readers'],
    serverVersionNum: 170005,
    roleExists: true,
    databaseExists: true,
    existingSchemas: ['public'],
    existingGroups: ['readers'],
    memberOf,
    relations: [
      { schema: 'public', name: 'orders', kind: 'table' },
      { schema: 'public', name: 'items', kind: 'table' },
    ],
    held: entries,
  };
}

const ORDERS_RW: Grant = {
  target: 'tables',
  schema: 'public',
  tables: ['orders'],
  privileges: ['SELECT', 'INSERT'],
};
const ORDERS_R: Grant = { target: 'tables', schema: 'public', tables: ['orders'], privileges: ['SELECT'] };
const ITEMS_R: Grant = { target: 'tables', schema: 'public', tables: ['items'], privileges: ['SELECT'] };

describe('planGrants on a role shared by several access resources', () => {
  it('does not revoke what another resource sharing the role still asks for', () => {
    // A had SELECT, INSERT on orders and now asks for SELECT on items only; B asks for SELECT on orders.
    const plan = planGrants({
      desired: record([ITEMS_R]),
      applied: record([ORDERS_RW]),
      keep: [record([ORDERS_R])],
      snapshots: [snapshot(held('orders', 'SELECT', 'INSERT'))],
    });
    expect(plan.statements.map((s) => s.sql)).toEqual([
      'REVOKE INSERT ON TABLE "public"."orders" FROM "shop_r0"',
      'GRANT SELECT ON TABLE "public"."items" TO "shop_r0"',
    ]);
  });

  it('revokes it all when nothing else asks for it (the behaviour without sharers is unchanged)', () => {
    const plan = planGrants({
      desired: record([ITEMS_R]),
      applied: record([ORDERS_RW]),
      snapshots: [snapshot(held('orders', 'SELECT', 'INSERT'))],
    });
    expect(plan.statements.map((s) => s.sql)).toEqual([
      'REVOKE SELECT, INSERT ON TABLE "public"."orders" FROM "shop_r0"',
      'GRANT SELECT ON TABLE "public"."items" TO "shop_r0"',
    ]);
  });

  it('on the deletion of one sharer, takes back only what no remaining sharer asks for, memberships included', () => {
    const empty = record([]);
    const plan = planGrants({
      desired: empty,
      applied: record([ORDERS_RW, ITEMS_R], ['readers']),
      keep: [record([ORDERS_R], ['readers'])],
      snapshots: [snapshot([...held('orders', 'SELECT', 'INSERT'), ...held('items', 'SELECT')], ['readers'])],
    });
    expect(plan.statements.map((s) => s.sql)).toEqual([
      'REVOKE INSERT ON TABLE "public"."orders" FROM "shop_r0"',
      'REVOKE SELECT ON TABLE "public"."items" FROM "shop_r0"',
    ]);
  });

  it("reads the kept records' schemas, and ignores kept records of other databases and invalid ones", () => {
    const other: Grant = { target: 'schema', schema: 'reports', privileges: ['USAGE'] };
    const queries = catalogQueries(record([ITEMS_R]), record([ORDERS_RW]), [
      record([other]),
      record([ORDERS_R], [], 'elsewhere'),
    ]);
    expect(queries).toEqual([{ role: ROLE, database: DB, schemas: ['public', 'reports'], groups: [] }]);
    const plan = planGrants({
      desired: record([ITEMS_R]),
      applied: record([ORDERS_RW]),
      keep: [record([ORDERS_R], [], 'elsewhere'), { ...record([ORDERS_R]), role: 'bad"; DROP' }],
      snapshots: [snapshot(held('orders', 'SELECT', 'INSERT'))],
    });
    expect(plan.statements.map((s) => s.sql)).toContain(
      'REVOKE SELECT, INSERT ON TABLE "public"."orders" FROM "shop_r0"',
    );
  });
});
