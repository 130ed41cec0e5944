// The pure parts of issue 13 §2 in the PostgreSQL layer: a refused statement split down to what
// was refused (splitStatement), and status.applied recording exactly what is in force after some
// statements were refused (recordInForce), so the next plan and a deletion act on the truth.
import { describe, expect, it } from 'vitest';
import type { Grant } from '../../../src/api/types.ts';
import {
  type AccessRecord,
  normaliseRecord,
  type PlannedStatement,
  planGrants,
  splitStatement,
} from '../../../src/postgres/grant-plan.ts';
import type {
  ConcretePrivilege,
  ObjectKind,
  PrivilegeEntry,
  PrivilegeSnapshot,
} from '../../../src/postgres/privilege-set.ts';
import { type RefusedStatement, recordInForce } from '../../../src/postgres/record-in-force.ts';

const ROLE = 'reports';
const DB = 'orders';

const record = (grants: Grant[], memberOf: string[] = [], database = DB): AccessRecord => ({
  role: ROLE,
  database,
  memberOf,
  grants,
});

const entries = (
  kind: ObjectKind,
  schema: string,
  name: string,
  privileges: ConcretePrivilege[],
  database = DB,
): PrivilegeEntry[] =>
  privileges.map((privilege) => ({ role: ROLE, database, kind, schema, name, privilege }));

function snapshot(over: Partial<PrivilegeSnapshot> = {}): PrivilegeSnapshot {
  return {
    role: ROLE,
    database: DB,
    schemas: ['app'],
    groups: ['readers', 'auditors'],
    serverVersionNum: 170005,
    roleExists: true,
    databaseExists: true,
    existingSchemas: ['app'],
    existingGroups: ['readers', 'auditors'],
    memberOf: [],
    relations: [
      { schema: 'app', name: 'orders', kind: 'table' },
      { schema: 'app', name: 'ledger', kind: 'table' },
      { schema: 'app', name: 'audit', kind: 'table' },
      { schema: 'app', name: 'orders_id_seq', kind: 'sequence' },
      { schema: 'app', name: 'ledger_id_seq', kind: 'sequence' },
    ],
    held: [],
    ...over,
  };
}

const refusedGrant = (...list: PrivilegeEntry[][]): RefusedStatement => ({
  action: 'grant',
  entries: list.flat(),
});

describe('planned statements carry what they grant', () => {
  it('names the entries of each privilege statement and the membership of each membership statement', () => {
    const plan = planGrants({
      desired: record(
        [
          { target: 'database', privileges: ['CONNECT'] },
          { target: 'tables', schema: 'app', privileges: ['SELECT'] },
        ],
        ['readers'],
      ),
      snapshots: [snapshot()],
    });
    expect(plan.statements.map((s) => [s.sql, s.membership, s.entries?.length])).toEqual([
      ['GRANT "readers" TO "reports"', { role: ROLE, group: 'readers' }, undefined],
      ['GRANT CONNECT ON DATABASE "orders" TO "reports"', undefined, 1],
      ['GRANT SELECT ON ALL TABLES IN SCHEMA "app" TO "reports"', undefined, 3],
    ]);
    expect(plan.statements[2]!.entries!.map((e) => e.name).sort()).toEqual(['audit', 'ledger', 'orders']);
  });
});

describe('splitStatement', () => {
  const statement = (list: PrivilegeEntry[], sql = 'GRANT …'): PlannedStatement => ({
    action: 'grant',
    database: DB,
    scope: 'database',
    sql,
    entries: list,
  });

  it('splits a statement on several objects into one per object, an ALL TABLES IN SCHEMA included', () => {
    const pieces = splitStatement(
      statement([
        ...entries('table', 'app', 'orders', ['SELECT', 'INSERT']),
        ...entries('table', 'app', 'ledger', ['SELECT', 'INSERT']),
      ]),
    );
    expect(pieces.map((p) => [p.sql, p.entries?.length, p.database, p.scope])).toEqual([
      ['GRANT SELECT, INSERT ON TABLE "app"."orders" TO "reports"', 2, DB, 'database'],
      ['GRANT SELECT, INSERT ON TABLE "app"."ledger" TO "reports"', 2, DB, 'database'],
    ]);
  });

  it('splits one object into one statement per privilege, and cannot split one privilege', () => {
    const pieces = splitStatement(
      statement(entries('sequence', 'app', 'orders_id_seq', ['USAGE', 'SELECT'])),
    );
    expect(pieces.map((p) => p.sql)).toEqual([
      'GRANT USAGE ON SEQUENCE "app"."orders_id_seq" TO "reports"',
      'GRANT SELECT ON SEQUENCE "app"."orders_id_seq" TO "reports"',
    ]);
    expect(splitStatement(pieces[0]!)).toEqual([]);
    expect(
      splitStatement({
        action: 'grant',
        database: DB,
        scope: 'cluster',
        sql: 'GRANT "g" TO "r"',
        membership: { role: ROLE, group: 'g' },
      }),
    ).toEqual([]);
  });

  it('renders revokes, databases and schemas, quoting every name', () => {
    const revoke: PlannedStatement = {
      action: 'revoke',
      database: DB,
      scope: 'cluster',
      sql: '…',
      entries: [...entries('database', '', 'or"ders', ['CONNECT', 'TEMPORARY'])],
    };
    expect(splitStatement(revoke).map((p) => p.sql)).toEqual([
      'REVOKE CONNECT ON DATABASE "or""ders" FROM "reports"',
      'REVOKE TEMPORARY ON DATABASE "or""ders" FROM "reports"',
    ]);
    expect(
      splitStatement(statement(entries('schema', 'a;b', '', ['USAGE', 'CREATE']))).map((p) => p.sql),
    ).toEqual(['GRANT USAGE ON SCHEMA "a;b" TO "reports"', 'GRANT CREATE ON SCHEMA "a;b" TO "reports"']);
  });
});

describe('recordInForce', () => {
  const CONNECT: Grant = { target: 'database', privileges: ['CONNECT'] };
  const USAGE: Grant = { target: 'schema', schema: 'app', privileges: ['USAGE'] };
  const ALL_TABLES: Grant = { target: 'tables', schema: 'app', privileges: ['SELECT'] };

  it('is the desired record, unchanged, when nothing was refused', () => {
    const desired = record([ALL_TABLES, CONNECT], ['readers']);
    expect(recordInForce({ desired, snapshot: snapshot(), refused: [] })).toEqual({
      record: normaliseRecord(desired),
      elsewhere: [],
    });
  });

  it('rewrites a whole-schema grant that lost a table as the tables in force, and leaves the other grants as written', () => {
    const { record: inForce } = recordInForce({
      desired: record([CONNECT, USAGE, ALL_TABLES]),
      snapshot: snapshot(),
      refused: [refusedGrant(entries('table', 'app', 'ledger', ['SELECT']))],
    });
    expect(inForce.grants).toEqual([
      CONNECT,
      USAGE,
      { target: 'tables', schema: 'app', tables: ['audit', 'orders'], privileges: ['SELECT'] },
    ]);
  });

  it('keeps the privileges of an object that were granted when others were refused, grouped by what is left', () => {
    const { record: inForce } = recordInForce({
      desired: record([
        { target: 'tables', schema: 'app', tables: ['audit', 'ledger', 'orders'], privileges: ['ALL'] },
      ]),
      snapshot: snapshot(),
      refused: [
        refusedGrant(
          entries('table', 'app', 'ledger', [
            'INSERT',
            'UPDATE',
            'DELETE',
            'TRUNCATE',
            'REFERENCES',
            'TRIGGER',
            'MAINTAIN',
          ]),
        ),
        refusedGrant(
          entries('table', 'app', 'audit', [
            'SELECT',
            'INSERT',
            'UPDATE',
            'DELETE',
            'TRUNCATE',
            'REFERENCES',
            'TRIGGER',
            'MAINTAIN',
          ]),
        ),
      ],
    });
    expect(inForce.grants).toEqual([
      { target: 'tables', schema: 'app', tables: ['ledger'], privileges: ['SELECT'] },
      {
        target: 'tables',
        schema: 'app',
        tables: ['orders'],
        privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER', 'MAINTAIN'],
      },
    ]);
  });

  it('drops a database or schema grant whose privileges were all refused, and keeps the rest of one partly refused', () => {
    const { record: inForce } = recordInForce({
      desired: record([
        { target: 'database', privileges: ['CONNECT', 'CREATE'] },
        { target: 'schema', schema: 'app', privileges: ['USAGE'] },
      ]),
      snapshot: snapshot(),
      refused: [
        refusedGrant(entries('database', '', DB, ['CREATE'])),
        refusedGrant(entries('schema', 'app', '', ['USAGE'])),
      ],
    });
    expect(inForce.grants).toEqual([{ target: 'database', privileges: ['CONNECT'] }]);
  });

  it('records the sequences in force as a list when some of the schema were refused', () => {
    const { record: inForce } = recordInForce({
      desired: record([{ target: 'sequences', schema: 'app', privileges: ['USAGE'] }]),
      snapshot: snapshot(),
      refused: [refusedGrant(entries('sequence', 'app', 'ledger_id_seq', ['USAGE']))],
    });
    expect(inForce.grants).toEqual([
      { target: 'sequences', schema: 'app', sequences: ['orders_id_seq'], privileges: ['USAGE'] },
    ]);
  });

  it('keeps tables that do not exist (yet) on record as they were asked for', () => {
    const { record: inForce } = recordInForce({
      desired: record([
        { target: 'tables', schema: 'app', tables: ['ledger', 'later', 'orders'], privileges: ['SELECT'] },
      ]),
      snapshot: snapshot(),
      refused: [refusedGrant(entries('table', 'app', 'ledger', ['SELECT']))],
    });
    expect(inForce.grants).toEqual([
      { target: 'tables', schema: 'app', tables: ['later', 'orders'], privileges: ['SELECT'] },
    ]);
  });

  it('leaves a refused membership out, and keeps one whose revoke was refused (it is still held, and ours)', () => {
    const { record: inForce } = recordInForce({
      desired: record([CONNECT], ['readers']),
      snapshot: snapshot(),
      refused: [
        { action: 'grant', membership: { role: ROLE, group: 'readers' } },
        { action: 'revoke', membership: { role: ROLE, group: 'auditors' } },
      ],
    });
    expect(inForce.memberOf).toEqual(['auditors']);
    expect(inForce.grants).toEqual([CONNECT]);
  });

  it('keeps privileges whose revoke was refused in this database; one in the database the spec left is `elsewhere`', () => {
    const elsewhere: RefusedStatement = {
      action: 'revoke',
      entries: entries('table', 'app', 'old', ['SELECT'], 'olddb'),
    };
    const result = recordInForce({
      desired: record([CONNECT]),
      snapshot: snapshot(),
      refused: [
        { action: 'revoke', entries: entries('table', 'app', 'ledger', ['SELECT', 'INSERT']) },
        elsewhere,
      ],
    });
    expect(result.record.grants).toEqual([
      CONNECT,
      { target: 'tables', schema: 'app', tables: ['ledger'], privileges: ['SELECT', 'INSERT'] },
    ]);
    expect(result.elsewhere).toEqual([elsewhere]);
  });

  it('makes the next plan grant only what was refused, revoke nothing of it, and revoke what is in force when it goes', () => {
    const desired = record([
      CONNECT,
      ALL_TABLES,
      { target: 'sequences', schema: 'app', privileges: ['USAGE'] },
    ]);
    const { record: inForce } = recordInForce({
      desired,
      snapshot: snapshot(),
      refused: [
        refusedGrant(entries('table', 'app', 'ledger', ['SELECT'])),
        refusedGrant(entries('sequence', 'app', 'ledger_id_seq', ['USAGE'])),
      ],
    });
    // What the server holds now: everything but what was refused.
    const held = [
      ...entries('database', '', DB, ['CONNECT']),
      ...entries('table', 'app', 'orders', ['SELECT']),
      ...entries('table', 'app', 'audit', ['SELECT']),
      ...entries('sequence', 'app', 'orders_id_seq', ['USAGE']),
    ];
    const again = planGrants({ desired, applied: inForce, snapshots: [snapshot({ held })] });
    expect(again.statements.map((s) => s.sql)).toEqual([
      'GRANT SELECT ON TABLE "app"."ledger" TO "reports"',
      'GRANT USAGE ON SEQUENCE "app"."ledger_id_seq" TO "reports"',
    ]);
    // Deleted: revokes exactly what is in force, never the refused ones (if someone else granted
    // them meanwhile, they are theirs).
    const heldByOthersToo = [...held, ...entries('table', 'app', 'ledger', ['SELECT'])];
    const gone = planGrants({
      desired: record([]),
      applied: inForce,
      snapshots: [snapshot({ held: heldByOthersToo })],
    });
    expect(gone.statements.map((s) => s.sql)).toEqual([
      'REVOKE USAGE ON SEQUENCE "app"."orders_id_seq" FROM "reports"',
      'REVOKE SELECT ON TABLE "app"."audit", "app"."orders" FROM "reports"',
      'REVOKE CONNECT ON DATABASE "orders" FROM "reports"',
    ]);
  });
});
