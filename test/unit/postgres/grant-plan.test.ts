import { describe, expect, it } from 'vitest';
import type { Grant } from '../../../src/api/types.ts';
import {
  type AccessRecord,
  catalogQueries,
  normaliseRecord,
  planGrants,
} from '../../../src/postgres/grant-plan.ts';
import {
  InvalidIdentifierError,
  InvalidPrivilegeError,
  ReservedRoleError,
} from '../../../src/postgres/identifiers.ts';
import {
  absentSnapshot,
  type ConcretePrivilege,
  concretePrivileges,
  describeMissing,
  type ObjectKind,
  type PrivilegeEntry,
  type PrivilegeSnapshot,
} from '../../../src/postgres/privilege-set.ts';

const ROLE = 'orders-api';
const DB = 'orders';

function record(grants: Grant[], memberOf: string[] = [], over: Partial<AccessRecord> = {}): AccessRecord {
  return { role: ROLE, database: DB, memberOf, grants, ...over };
}

function entries(
  kind: ObjectKind,
  schema: string,
  name: string,
  privileges: ConcretePrivilege[],
  role = ROLE,
  database = DB,
): PrivilegeEntry[] {
  return privileges.map((privilege) => ({ role, database, kind, schema, name, privilege }));
}

/** A database with schema app (tables orders, payments, secrets; one sequence) and group orders_rw. */
function snapshot(over: Partial<PrivilegeSnapshot> = {}): PrivilegeSnapshot {
  return {
    role: ROLE,
    database: DB,
    schemas: ['app', 'public'],
    groups: ['orders_rw', 'reporting'],
    serverVersionNum: 170005,
    roleExists: true,
    databaseExists: true,
    existingSchemas: ['app', 'public'],
    existingGroups: ['orders_rw', 'reporting'],
    memberOf: [],
    relations: [
      { schema: 'app', name: 'orders', kind: 'table' },
      { schema: 'app', name: 'payments', kind: 'table' },
      { schema: 'app', name: 'secrets', kind: 'table' },
      { schema: 'app', name: 'orders_id_seq', kind: 'sequence' },
    ],
    held: [],
    ...over,
  };
}

const CONNECT: Grant = { target: 'database', privileges: ['CONNECT'] };
const USAGE: Grant = { target: 'schema', schema: 'app', privileges: ['USAGE'] };
const READ_ORDERS: Grant = {
  target: 'tables',
  schema: 'app',
  tables: ['orders'],
  privileges: ['SELECT', 'INSERT'],
};
const READ_PAYMENTS: Grant = {
  target: 'tables',
  schema: 'app',
  tables: ['payments'],
  privileges: ['SELECT'],
};
const HELD_BASE = [
  ...entries('database', '', DB, ['CONNECT']),
  ...entries('schema', 'app', '', ['USAGE']),
  ...entries('table', 'app', 'orders', ['SELECT', 'INSERT']),
];

const sqlOf = (plan: ReturnType<typeof planGrants>): string[] => plan.statements.map((s) => s.sql);

describe('planGrants: grants and revokes by table', () => {
  it.each<{
    name: string;
    desired: AccessRecord;
    applied?: AccessRecord;
    snap: PrivilegeSnapshot;
    sql: string[];
  }>([
    {
      name: 'grants everything on a fresh role, shallow objects first',
      desired: record([READ_ORDERS, USAGE, CONNECT], ['orders_rw']),
      snap: snapshot(),
      sql: [
        'GRANT "orders_rw" TO "orders-api"',
        'GRANT CONNECT ON DATABASE "orders" TO "orders-api"',
        'GRANT USAGE ON SCHEMA "app" TO "orders-api"',
        'GRANT SELECT, INSERT ON TABLE "app"."orders" TO "orders-api"',
      ],
    },
    {
      name: 'plans nothing when the server already holds what is desired (steady state)',
      desired: record([CONNECT, USAGE, READ_ORDERS], ['orders_rw']),
      applied: record([CONNECT, USAGE, READ_ORDERS], ['orders_rw']),
      snap: snapshot({ held: HELD_BASE, memberOf: ['orders_rw'] }),
      sql: [],
    },
    {
      name: 'grants only the missing privilege of an object',
      desired: record([CONNECT, USAGE, READ_ORDERS]),
      applied: record([CONNECT, USAGE, READ_ORDERS]),
      snap: snapshot({ held: HELD_BASE.filter((e) => e.privilege !== 'INSERT') }),
      sql: ['GRANT INSERT ON TABLE "app"."orders" TO "orders-api"'],
    },
    {
      name: 'revokes a grant that was applied and is no longer desired',
      desired: record([CONNECT, USAGE, READ_ORDERS]),
      applied: record([CONNECT, USAGE, READ_ORDERS, READ_PAYMENTS]),
      snap: snapshot({ held: [...HELD_BASE, ...entries('table', 'app', 'payments', ['SELECT'])] }),
      sql: ['REVOKE SELECT ON TABLE "app"."payments" FROM "orders-api"'],
    },
    {
      name: 'does not revoke what was applied but is no longer held',
      desired: record([CONNECT]),
      applied: record([CONNECT, READ_PAYMENTS]),
      snap: snapshot({ held: entries('database', '', DB, ['CONNECT']) }),
      sql: [],
    },
    {
      name: 'leaves alone privileges someone else granted (never applied by this resource)',
      desired: record([CONNECT]),
      applied: record([CONNECT]),
      snap: snapshot({
        held: [
          ...entries('database', '', DB, ['CONNECT', 'TEMPORARY']),
          ...entries('table', 'app', 'secrets', ['SELECT']),
        ],
        memberOf: ['reporting'],
      }),
      sql: [],
    },
    {
      name: 'narrows a privilege list: revokes only the dropped privilege',
      desired: record([{ target: 'tables', schema: 'app', tables: ['orders'], privileges: ['SELECT'] }]),
      applied: record([READ_ORDERS]),
      snap: snapshot({ held: entries('table', 'app', 'orders', ['SELECT', 'INSERT']) }),
      sql: ['REVOKE INSERT ON TABLE "app"."orders" FROM "orders-api"'],
    },
    {
      name: 'adds and removes memberships',
      desired: record([], ['orders_rw']),
      applied: record([], ['reporting']),
      snap: snapshot({ memberOf: ['reporting'] }),
      sql: ['REVOKE "reporting" FROM "orders-api"', 'GRANT "orders_rw" TO "orders-api"'],
    },
    {
      name: 'revokes everything applied when nothing is desired, deepest first',
      desired: record([]),
      applied: record(
        [CONNECT, USAGE, READ_ORDERS, { target: 'sequences', schema: 'app', privileges: ['USAGE'] }],
        ['orders_rw'],
      ),
      snap: snapshot({
        held: [...HELD_BASE, ...entries('sequence', 'app', 'orders_id_seq', ['USAGE'])],
        memberOf: ['orders_rw'],
      }),
      sql: [
        'REVOKE USAGE ON ALL SEQUENCES IN SCHEMA "app" FROM "orders-api"',
        'REVOKE SELECT, INSERT ON TABLE "app"."orders" FROM "orders-api"',
        'REVOKE USAGE ON SCHEMA "app" FROM "orders-api"',
        'REVOKE CONNECT ON DATABASE "orders" FROM "orders-api"',
        'REVOKE "orders_rw" FROM "orders-api"',
      ],
    },
  ])('$name', ({ desired, applied, snap, sql }) => {
    expect(sqlOf(planGrants({ desired, applied, snapshots: [snap] }))).toEqual(sql);
  });
});

describe('planGrants: whole schemas and ALL', () => {
  const allTables: Grant = { target: 'tables', schema: 'app', privileges: ['SELECT'] };

  it('grants on ALL TABLES IN SCHEMA when no table has the privilege yet', () => {
    const plan = planGrants({ desired: record([allTables]), snapshots: [snapshot()] });
    expect(sqlOf(plan)).toEqual(['GRANT SELECT ON ALL TABLES IN SCHEMA "app" TO "orders-api"']);
  });

  it('grants per table when some already have it (a table created since the last reconcile)', () => {
    const held = [
      ...entries('table', 'app', 'orders', ['SELECT']),
      ...entries('table', 'app', 'payments', ['SELECT']),
    ];
    const plan = planGrants({
      desired: record([allTables]),
      applied: record([allTables]),
      snapshots: [snapshot({ held })],
    });
    expect(sqlOf(plan)).toEqual(['GRANT SELECT ON TABLE "app"."secrets" TO "orders-api"']);
  });

  it('never uses ALL TABLES IN SCHEMA for a table list, even one naming every table', () => {
    const plan = planGrants({
      desired: record([
        {
          target: 'tables',
          schema: 'app',
          tables: ['secrets', 'orders', 'payments'],
          privileges: ['SELECT'],
        },
      ]),
      snapshots: [snapshot()],
    });
    expect(sqlOf(plan)).toEqual([
      'GRANT SELECT ON TABLE "app"."orders", "app"."payments", "app"."secrets" TO "orders-api"',
    ]);
  });

  it('narrowing "all tables" to a list revokes the others, per table', () => {
    const held = ['orders', 'payments', 'secrets'].flatMap((t) => entries('table', 'app', t, ['SELECT']));
    const plan = planGrants({
      desired: record([{ target: 'tables', schema: 'app', tables: ['orders'], privileges: ['SELECT'] }]),
      applied: record([allTables]),
      snapshots: [snapshot({ held })],
    });
    expect(sqlOf(plan)).toEqual([
      'REVOKE SELECT ON TABLE "app"."payments", "app"."secrets" FROM "orders-api"',
    ]);
  });

  it('expands ALL to the concrete privileges of the server version', () => {
    const all: Grant = { target: 'tables', schema: 'app', tables: ['orders'], privileges: ['ALL'] };
    const on17 = planGrants({ desired: record([all]), snapshots: [snapshot()] });
    expect(sqlOf(on17)).toEqual([
      'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER, MAINTAIN ON TABLE "app"."orders" TO "orders-api"',
    ]);
    const on16 = planGrants({ desired: record([all]), snapshots: [snapshot({ serverVersionNum: 160004 })] });
    expect(sqlOf(on16)[0]).toBe(
      'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE "app"."orders" TO "orders-api"',
    );
    // ALL held as its concrete parts is the steady state.
    const held = entries('table', 'app', 'orders', concretePrivileges('tables', ['ALL'], 170005));
    expect(
      sqlOf(planGrants({ desired: record([all]), applied: record([all]), snapshots: [snapshot({ held })] })),
    ).toEqual([]);
  });

  it.each([
    ['database', ['ALL'], ['CONNECT', 'CREATE', 'TEMPORARY']],
    ['schema', ['ALL', 'USAGE'], ['USAGE', 'CREATE']],
    ['sequences', ['ALL'], ['USAGE', 'SELECT', 'UPDATE']],
    ['tables', ['INSERT', 'SELECT'], ['SELECT', 'INSERT']],
  ] as const)('concretePrivileges(%s, %j)', (target, privileges, expected) => {
    expect(concretePrivileges(target, privileges, 170000)).toEqual(expected);
  });

  it('merges overlapping grants on one object into one statement', () => {
    const plan = planGrants({
      desired: record([
        { target: 'tables', schema: 'app', privileges: ['SELECT'] },
        { target: 'tables', schema: 'app', tables: ['orders'], privileges: ['INSERT', 'SELECT'] },
      ]),
      snapshots: [snapshot()],
    });
    expect(sqlOf(plan)).toEqual([
      'GRANT SELECT ON TABLE "app"."payments", "app"."secrets" TO "orders-api"',
      'GRANT SELECT, INSERT ON TABLE "app"."orders" TO "orders-api"',
    ]);
  });
});

describe('planGrants: where statements run', () => {
  it('runs memberships and database privileges cluster-wide from the target, the rest in it', () => {
    const plan = planGrants({
      desired: record([CONNECT, USAGE, READ_ORDERS], ['orders_rw']),
      snapshots: [snapshot()],
    });
    expect(plan.statements.map((s) => [s.action, s.scope, s.database])).toEqual([
      ['grant', 'cluster', DB],
      ['grant', 'cluster', DB],
      ['grant', 'database', DB],
      ['grant', 'database', DB],
    ]);
  });

  it('moving to another database revokes in the old one and grants in the new', () => {
    const applied = record([CONNECT, USAGE, READ_ORDERS], ['orders_rw'], { database: 'legacy' });
    const desired = record([CONNECT, USAGE, READ_ORDERS], ['orders_rw']);
    const queries = catalogQueries(desired, applied);
    expect(queries.map((q) => q.database)).toEqual([DB, 'legacy']);
    const old = snapshot({
      database: 'legacy',
      schemas: queries[1]!.schemas,
      groups: [],
      held: HELD_BASE.map((e) => ({
        ...e,
        database: 'legacy',
        name: e.kind === 'database' ? 'legacy' : e.name,
      })),
      memberOf: ['orders_rw'],
    });
    const plan = planGrants({ desired, applied, snapshots: [snapshot({ memberOf: ['orders_rw'] }), old] });
    expect(plan.statements.map((s) => [s.database, s.sql])).toEqual([
      ['legacy', 'REVOKE SELECT, INSERT ON TABLE "app"."orders" FROM "orders-api"'],
      ['legacy', 'REVOKE USAGE ON SCHEMA "app" FROM "orders-api"'],
      [DB, 'REVOKE CONNECT ON DATABASE "legacy" FROM "orders-api"'],
      [DB, 'GRANT CONNECT ON DATABASE "orders" TO "orders-api"'],
      [DB, 'GRANT USAGE ON SCHEMA "app" TO "orders-api"'],
      [DB, 'GRANT SELECT, INSERT ON TABLE "app"."orders" TO "orders-api"'],
    ]);
  });

  it('revokes nothing in a database that no longer exists', () => {
    const applied = record([CONNECT, USAGE], [], { database: 'gone' });
    const desired = record([CONNECT]);
    const gone = absentSnapshot(catalogQueries(desired, applied)[1]!, 170000);
    const plan = planGrants({ desired, applied, snapshots: [snapshot(), gone] });
    expect(sqlOf(plan)).toEqual(['GRANT CONNECT ON DATABASE "orders" TO "orders-api"']);
  });

  it('a new role name revokes from the old role and grants to the new one', () => {
    const applied = record([CONNECT], ['orders_rw'], { role: 'old-name' });
    const desired = record([CONNECT], ['orders_rw']);
    const old = snapshot({
      role: 'old-name',
      groups: [],
      held: entries('database', '', DB, ['CONNECT'], 'old-name'),
      memberOf: ['orders_rw'],
    });
    const plan = planGrants({ desired, applied, snapshots: [snapshot(), old] });
    expect(sqlOf(plan)).toEqual([
      'REVOKE CONNECT ON DATABASE "orders" FROM "old-name"',
      'REVOKE "orders_rw" FROM "old-name"',
      'GRANT "orders_rw" TO "orders-api"',
      'GRANT CONNECT ON DATABASE "orders" TO "orders-api"',
    ]);
  });

  it('asks for one catalog read when the target is unchanged, covering both records', () => {
    const queries = catalogQueries(
      record([USAGE], ['orders_rw']),
      record([{ target: 'schema', schema: 'old', privileges: ['USAGE'] }], ['reporting']),
    );
    expect(queries).toEqual([{ role: ROLE, database: DB, schemas: ['app', 'old'], groups: ['orders_rw'] }]);
  });

  it('refuses to plan without the snapshot it needs, or one that was not asked about a schema', () => {
    expect(() => planGrants({ desired: record([]), snapshots: [] })).toThrow(/no catalog snapshot/);
    expect(() =>
      planGrants({
        desired: record([{ target: 'schema', schema: 'other', privileges: ['USAGE'] }]),
        snapshots: [snapshot()],
      }),
    ).toThrow(/not asked about schema "other"/);
  });
});

describe('planGrants: missing objects', () => {
  it('reports what does not exist and leaves its grants out', () => {
    const plan = planGrants({
      desired: record(
        [
          CONNECT,
          { target: 'tables', schema: 'app', tables: ['orders', 'nope'], privileges: ['SELECT'] },
          { target: 'schema', schema: 'public', privileges: ['USAGE'] },
        ],
        ['orders_rw'],
      ),
      snapshots: [snapshot({ existingSchemas: ['app'], existingGroups: [] })],
    });
    expect(plan.missing.map(describeMissing)).toEqual([
      'group role "orders_rw" does not exist',
      'schema "public" does not exist in database "orders"',
      'table "app"."nope" does not exist in database "orders"',
    ]);
    expect(sqlOf(plan)).toEqual([
      'GRANT CONNECT ON DATABASE "orders" TO "orders-api"',
      'GRANT SELECT ON TABLE "app"."orders" TO "orders-api"',
    ]);
  });

  it('plans nothing for a role that does not exist', () => {
    const plan = planGrants({ desired: record([CONNECT]), snapshots: [snapshot({ roleExists: false })] });
    expect(plan.statements).toEqual([]);
    expect(plan.missing).toEqual([{ kind: 'role', database: DB, name: ROLE }]);
  });
});

describe('planGrants: identifiers and privileges', () => {
  it('quotes hostile and unicode names as single identifiers', () => {
    const role = 'r"; DROP ROLE "orders-api"; --';
    const schema = 'sch/*em*/a';
    const table = 'Bestellungen_ü"注文';
    const plan = planGrants({
      desired: {
        role,
        database: 'db;x',
        memberOf: ["g'); DELETE FROM t; --"],
        grants: [
          { target: 'database', privileges: ['CONNECT'] },
          { target: 'tables', schema, tables: [table], privileges: ['SELECT'] },
        ],
      },
      snapshots: [
        snapshot({
          role,
          database: 'db;x',
          schemas: [schema],
          existingSchemas: [schema],
          groups: ["g'); DELETE FROM t; --"],
          existingGroups: ["g'); DELETE FROM t; --"],
          relations: [{ schema, name: table, kind: 'table' }],
        }),
      ],
    });
    expect(sqlOf(plan)).toEqual([
      `GRANT "g'); DELETE FROM t; --" TO "r""; DROP ROLE ""orders-api""; --"`,
      'GRANT CONNECT ON DATABASE "db;x" TO "r""; DROP ROLE ""orders-api""; --"',
      'GRANT SELECT ON TABLE "sch/*em*/a"."Bestellungen_ü""注文" TO "r""; DROP ROLE ""orders-api""; --"',
    ]);
  });

  it.each<[string, AccessRecord, unknown]>([
    [
      'a privilege outside the list',
      record([{ target: 'tables', schema: 'app', privileges: ['DROP' as 'SELECT'] }]),
      InvalidPrivilegeError,
    ],
    [
      'a privilege of another target',
      record([{ target: 'schema', schema: 'app', privileges: ['SELECT' as 'USAGE'] }]),
      InvalidPrivilegeError,
    ],
    [
      'SQL in a privilege',
      record([{ target: 'database', privileges: ['CONNECT ON DATABASE x TO PUBLIC; --' as 'CONNECT'] }]),
      InvalidPrivilegeError,
    ],
    [
      'an unknown target',
      record([{ target: 'functions', schema: 'app', privileges: ['EXECUTE'] } as unknown as Grant]),
      InvalidPrivilegeError,
    ],
    [
      'a grant without target (a spec that said on, which the apiserver prunes)',
      record([{ schema: 'app', privileges: ['USAGE'] } as unknown as Grant]),
      /a grant has no target; expected one of database, schema, tables, sequences/,
    ],
    ['no privileges', record([{ target: 'schema', schema: 'app', privileges: [] }]), InvalidPrivilegeError],
    [
      'an empty table list',
      record([{ target: 'tables', schema: 'app', tables: [], privileges: ['SELECT'] }]),
      InvalidPrivilegeError,
    ],
    [
      'a NUL in a table',
      record([{ target: 'tables', schema: 'app', tables: ['a\0b'], privileges: ['SELECT'] }]),
      InvalidIdentifierError,
    ],
    ['a long role name', record([], [], { role: 'r'.repeat(64) }), InvalidIdentifierError],
    ['an empty group', record([], ['']), InvalidIdentifierError],
    ['a reserved role', record([], [], { role: 'azure_pg_admin' }), ReservedRoleError],
    ['the postgres role', record([], [], { role: 'Postgres' }), ReservedRoleError],
  ])('refuses %s', (_, desired, error) => {
    expect(() => planGrants({ desired, snapshots: [snapshot({ role: desired.role })] })).toThrow(
      error as Error,
    );
  });
});

describe('normaliseRecord', () => {
  it('sorts, removes duplicates, and keeps ALL as written', () => {
    expect(
      normaliseRecord(
        record(
          [
            {
              target: 'tables',
              schema: 'app',
              tables: ['b', 'a', 'b'],
              privileges: ['INSERT', 'SELECT', 'INSERT'],
            },
            CONNECT,
            { target: 'database', privileges: ['CONNECT'] },
            { target: 'schema', schema: 'app', privileges: ['ALL'] },
          ],
          ['z', 'a', 'z'],
        ),
      ),
    ).toEqual(
      record(
        [
          { target: 'database', privileges: ['CONNECT'] },
          { target: 'schema', schema: 'app', privileges: ['ALL'] },
          { target: 'tables', schema: 'app', tables: ['a', 'b'], privileges: ['SELECT', 'INSERT'] },
        ],
        ['a', 'z'],
      ),
    );
  });

  it('is what a plan records as applied', () => {
    const desired = record([READ_ORDERS, CONNECT], ['orders_rw']);
    expect(planGrants({ desired, snapshots: [snapshot()] }).applied).toEqual(normaliseRecord(desired));
  });
});
