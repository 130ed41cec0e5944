// Issue 8, bad input: role, schema, table, group and database names built to inject SQL, end to
// end through the apiserver and the controller process into the real PostgreSQL.
//
// 1. Names that carry SQL (quotes, semicolons, comments, backslashes, unicode homoglyphs and
//    zero-width characters, `$$` with spaces, NUL, over 63 bytes) are refused by the CRD with a 422
//    naming the field, in every field that reaches SQL, and the catalog does not change.
// 2. Names the CRD admits but that only work quoted (mixed case, `-`, `$$`, `--`, SQL keywords,
//    exactly 63 bytes) reach real objects created beforehand next to decoys that differ only in
//    case or quoting: the catalog diff is exactly the expected roles, memberships and grants, the
//    app logs in and reads exactly the granted table, and deleting the resources restores the
//    catalog exactly.
// 3. The identifier layer itself (src/postgres/identifiers.ts), property-tested in the real
//    server with arbitrary strings the CRD would never let through: each name is refused by
//    quoteIdentifier or becomes exactly one object of exactly that name, and nothing else.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_PLURAL, GROUP, SERVER_PLURAL, VERSION } from '../../src/api/constants.ts';
import { type Grant, isReservedRoleName } from '../../src/api/types.ts';
import { statusOf } from '../../src/kube/client.ts';
import {
  assertManageableRole,
  InvalidIdentifierError,
  identifierProblem,
  privilegeList,
  quoteIdentifier,
  quoteQualified,
} from '../../src/postgres/identifiers.ts';
import { AzureEmulatorClient, type IdentityView } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { type ManagedProcess, makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  API,
  appToken,
  conditionOf,
  createAppDatabase,
  createDatabaseServer,
  createOptedInNamespace,
  deleteAccess,
  deleteAccessesAndWait,
  isReady,
  loginAndQuery,
  readAccess,
  startControllerProcess,
  superuserQuery,
  superuserUrl,
} from '../harness/scenario.ts';
import { FUZZ_SEED, nastyString } from './support/arbitraries.ts';
import { catalogSnapshot, diffCatalog } from './support/sql-catalog.ts';

const harness = harnessInfo();
const SUBSCRIPTION = '00000000-0000-0000-0000-00000000510c';

describe.skipIf(!harness)('SQL injection through names, end to end in the real PostgreSQL', () => {
  const run = uniqueName('sqli');
  const suffix = run.slice('sqli-'.length);
  const database = `sqli_${suffix}`;
  const namespace = run;
  const serverName = run;
  const resourceGroup = `rg-${run}`;
  const groupA = `Readers-Group-${suffix}`;
  const groupADecoy = `readers-group-${suffix}`;
  const groupB = `grp$$${suffix}`;
  const roles = {
    a: `Mixed-Case$$Role-${suffix}`,
    b: `x--y-${suffix}`,
    c: `Long$$-${suffix}-`.padEnd(63, 'Z'),
  };
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let emulator: AzureEmulatorClient;
  let dir: string;
  let controller: ManagedProcess;
  const identities: Record<string, IdentityView> = {};
  let initial: Set<string>;

  const snapshot = () => catalogSnapshot(harness!, ['postgres', database]);

  function accessBody(name: string, spec: Record<string, unknown>): Record<string, unknown> {
    return {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'EntraDatabaseAccess',
      metadata: { name },
      spec: {
        serviceAccountName: name,
        identity: { resourceId: identities.a!.id },
        serverRef: serverName,
        database,
        grants: [{ target: 'database', privileges: ['CONNECT'] }],
        ...spec,
      },
    };
  }

  const create = (name: string, spec: Record<string, unknown>) =>
    custom
      .createNamespacedCustomObject({
        ...API,
        plural: ACCESS_PLURAL,
        namespace,
        body: accessBody(name, spec),
      })
      .then(
        () => ({ status: 201, message: '' }),
        (error: unknown) => ({
          status: statusOf(error) ?? 0,
          message: String((error as { body?: unknown }).body),
        }),
      );

  beforeAll(async () => {
    const info = harness!;
    kc = adminKubeConfig(info);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    emulator = new AzureEmulatorClient(info.azure.url, { ca: readFileSync(info.caFile) });
    dir = makeTempDir('sql-injection');
    for (const key of ['a', 'b', 'c']) {
      identities[key] = await emulator.createIdentity({
        subscriptionId: SUBSCRIPTION,
        resourceGroup,
        name: `id-${key}-${suffix}`,
      });
    }
    await createOptedInNamespace(
      core,
      namespace,
      `/subscriptions/${SUBSCRIPTION}/resourceGroups/${resourceGroup}/*`,
    );
    // Group roles, one with a decoy that differs only in case, made by the Entra admin (as on
    // Azure), which gives it the ADMIN OPTION it needs to grant them.
    const admin = quoteIdentifier(info.azure.operator.postgresAdminRole);
    for (const group of [groupA, groupADecoy, groupB])
      await superuserQuery(info, `SET ROLE ${admin}; CREATE ROLE ${quoteIdentifier(group)} NOLOGIN`);
    // Real objects with names that only work quoted, each next to a decoy that an unquoted or
    // wrongly quoted name would hit instead, and decoys whose names are themselves SQL.
    await createAppDatabase(
      info,
      database,
      `CREATE SCHEMA "Sales"; CREATE SCHEMA "sales"; CREATE SCHEMA "a$$b"; CREATE SCHEMA "has-dash";
       CREATE SCHEMA "Sales; DROP SCHEMA sales; --";
       CREATE TABLE "Sales"."Orders" (id int); CREATE TABLE "Sales"."orders" (id int);
       CREATE TABLE "sales"."Orders" (id int); CREATE TABLE "Sales"."Orders""; DROP TABLE x; --" (id int);
       CREATE TABLE "Sales; DROP SCHEMA sales; --"."Orders" (id int);
       CREATE TABLE "a$$b"."t$$1" (id int); CREATE TABLE "a$$b"."T$$1" (id int); CREATE SEQUENCE "a$$b"."s$$1";
       CREATE TABLE "has-dash"."x-y" (id int); CREATE TABLE "has-dash"."x" (id int); CREATE TABLE "has-dash"."y" (id int);
       CREATE TABLE public."SELECT" (id int); CREATE TABLE public."select" (id int);
       INSERT INTO "Sales"."Orders" VALUES (42); INSERT INTO "Sales"."orders" VALUES (7);`,
    );
    await createDatabaseServer(info, kc, {
      name: serverName,
      namespaces: [namespace],
      databases: [database],
      memberOf: [groupA, groupB],
    });
    controller = await startControllerProcess(info, kc, { dir, clusterName: run });
    initial = await snapshot();
  });

  afterAll(async () => {
    const info = harness!;
    await deleteAccessesAndWait(custom, namespace);
    await controller?.stop();
    await custom
      .deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name: serverName })
      .catch(() => {});
    await kc
      .makeApiClient(k8s.CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => {});
    await superuserQuery(info, `DROP DATABASE IF EXISTS ${quoteIdentifier(database)} WITH (FORCE)`).catch(
      () => {},
    );
    for (const role of [...Object.values(roles), groupA, groupADecoy, groupB]) {
      await superuserQuery(info, `DROP ROLE IF EXISTS ${quoteIdentifier(role)}`).catch(() => {});
    }
    if (dir) removeTempDir(dir);
  });

  // Each carries SQL; the CRD must refuse it in every field that reaches SQL.
  const ATTACKS: Array<[string, string]> = [
    ['double quote closing the identifier', 'x"; DROP ROLE postgres; --'],
    ['single quote closing a literal', "x'; DROP DATABASE postgres; --"],
    ['statement separator', 'x;GRANT azure_pg_admin TO x'],
    ['block comment', 'x/**/OR/**/1'],
    ['backslash escape', 'x\\"; SELECT 1; --'],
    ['dollar quoting with a statement', 'x$$;DROP ROLE y;$$'],
    ['space', 'x OR 1=1'],
    ['Cyrillic homoglyph of postgres', 'pоstgres'],
    ['zero-width space', 'azure\u200b_pg_admin'],
    ['fullwidth letters', 'ａzure_pg_admin'],
    ['right-to-left override', 'x\u202eadmin'],
    ['NUL byte', 'x\u0000y'],
    ['64 ASCII bytes (PostgreSQL would truncate to 63)', 'a'.repeat(64)],
    ['63 characters of 2-byte UTF-8', 'é'.repeat(63)],
    ['a dot (schema-qualified)', 'pg_catalog.pg_authid'],
    ['Unicode-escape identifier syntax', 'U&"\\0061"'],
    ['empty', ''],
  ];
  const FIELDS: Array<[string, (payload: string) => Record<string, unknown>, RegExp]> = [
    ['spec.roleName', (p) => ({ roleName: p }), /roleName/],
    ['spec.database', (p) => ({ database: p }), /database/],
    ['spec.memberOf[0]', (p) => ({ roleName: `r-${suffix}`, memberOf: [p] }), /memberOf/],
    [
      'spec.grants[0].schema',
      (p) => ({ roleName: `r-${suffix}`, grants: [{ target: 'schema', schema: p, privileges: ['USAGE'] }] }),
      /schema/,
    ],
    [
      'spec.grants[0].tables[0]',
      (p) => ({
        roleName: `r-${suffix}`,
        grants: [{ target: 'tables', schema: 'public', tables: [p], privileges: ['SELECT'] }],
      }),
      /tables/,
    ],
    [
      'spec.grants[0].privileges[0]',
      (p) => ({ roleName: `r-${suffix}`, grants: [{ target: 'database', privileges: [p] }] }),
      /privileges/,
    ],
    [
      'spec.ownedObjects.reassignTo',
      (p) => ({ roleName: `r-${suffix}`, ownedObjects: { policy: 'Reassign', reassignTo: p } }),
      /reassignTo/,
    ],
  ];

  it(`the CRD refuses ${ATTACKS.length} injection payloads in each of ${FIELDS.length} fields with a 422, and the catalog does not change`, async () => {
    const before = await snapshot();
    const outcomes: string[] = [];
    for (const [field, spec, says] of FIELDS) {
      for (const [what, payload] of ATTACKS) {
        const name = `inj-${outcomes.length}`;
        const result = await create(name, spec(payload));
        outcomes.push(`${field} ${what}: ${result.status}`);
        expect(result.status, `${field} = ${JSON.stringify(payload)} (${what}): ${result.message}`).toBe(422);
        expect(result.message, `${field} = ${JSON.stringify(payload)}`).toMatch(says);
        expect(await readAccess(custom, namespace, name)).toBeUndefined();
      }
    }
    // The platform team's own resource gets the same treatment.
    for (const [what, payload] of ATTACKS) {
      const error = await custom
        .createClusterCustomObject({
          ...API,
          plural: SERVER_PLURAL,
          body: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'EntraDatabaseServer',
            metadata: { name: `${run}-bad` },
            spec: {
              host: 'localhost',
              adminRole: harness!.azure.operator.postgresAdminRole,
              allowedNamespaces: { names: [namespace] },
              allowedDatabases: [database],
              allowedMemberOf: [payload],
            },
          },
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(statusOf(error), `allowedMemberOf = ${JSON.stringify(payload)} (${what})`).toBe(422);
    }
    expect(diffCatalog(before, await snapshot())).toEqual({ added: [], removed: [] });
  });

  const accesses: Array<{
    name: string;
    identity: string;
    role: string;
    memberOf?: string[];
    grants: Grant[];
  }> = [
    {
      name: 'acc-a',
      identity: 'a',
      role: roles.a,
      memberOf: [groupA],
      grants: [
        { target: 'database', privileges: ['CONNECT'] },
        { target: 'schema', schema: 'Sales', privileges: ['USAGE'] },
        { target: 'tables', schema: 'Sales', tables: ['Orders'], privileges: ['SELECT', 'UPDATE'] },
        { target: 'schema', schema: 'public', privileges: ['USAGE'] },
        { target: 'tables', schema: 'public', tables: ['SELECT'], privileges: ['SELECT'] },
      ],
    },
    {
      name: 'acc-b',
      identity: 'b',
      role: roles.b,
      grants: [
        { target: 'schema', schema: 'a$$b', privileges: ['USAGE'] },
        { target: 'tables', schema: 'a$$b', privileges: ['SELECT'] },
        { target: 'sequences', schema: 'a$$b', privileges: ['USAGE'] },
        { target: 'schema', schema: 'has-dash', privileges: ['USAGE'] },
        { target: 'tables', schema: 'has-dash', tables: ['x-y'], privileges: ['INSERT'] },
      ],
    },
    {
      name: 'acc-c',
      identity: 'c',
      role: roles.c,
      memberOf: [groupB],
      grants: [{ target: 'database', privileges: ['CONNECT', 'TEMPORARY'] }],
    },
  ];

  it('quotes names that only work quoted, so each grant hits exactly its object and nothing else changes', async () => {
    expect(Buffer.byteLength(roles.c)).toBe(63);
    const before = await snapshot();
    for (const a of accesses) {
      const result = await create(a.name, {
        identity: { resourceId: identities[a.identity]!.id },
        roleName: a.role,
        ...(a.memberOf ? { memberOf: a.memberOf } : {}),
        grants: a.grants,
      });
      expect(result.status, result.message).toBe(201);
    }
    for (const a of accesses) {
      const access = await pollUntil(() => readAccess(custom, namespace, a.name), isReady, 90_000, 250);
      expect(
        isReady(access),
        `${a.name}: ${JSON.stringify(access?.status?.conditions)}\n${controller.tail()}`,
      ).toBe(true);
      expect(access?.status?.connection?.user).toBe(a.role);
    }

    const admin = harness!.azure.operator.postgresAdminRole;
    const db = (k: string) => `${database}:${k}`;
    const grant = (kind: string, object: string, role: string, privilege: string) =>
      `grant|${kind}|${object}|${role}|${privilege}|grantable=false`;
    const expected = [
      // The three roles, with login, exactly as named (case, `$$`, `--`, 63 bytes kept).
      ...Object.values(roles).map(
        (r) =>
          `role|${r}|super=false,inherit=true,createrole=false,createdb=false,login=true,replication=false,bypassrls=false,connlimit=-1`,
      ),
      // Memberships: exactly the mixed-case group (not its lower-case decoy) and the `$$` group;
      // the admin's ADMIN OPTION on each role it created is how pgaadauth leaves it, and the
      // stand-ins make azure_pg_admin a member of each principal, as Azure's azure_pg_admin
      // manages every non-restricted role (docs/design.md §7).
      `member|${groupA}|${roles.a}|admin=false`,
      `member|${groupB}|${roles.c}|admin=false`,
      ...Object.values(roles).map((r) => `member|${r}|${admin}|admin=true`),
      ...Object.values(roles).map((r) => `member|${r}|azure_pg_admin|admin=false`),
      grant('database', database, roles.a, 'CONNECT'),
      grant('database', database, roles.c, 'CONNECT'),
      grant('database', database, roles.c, 'TEMPORARY'),
      db(grant('schema', 'Sales', roles.a, 'USAGE')),
      db(grant('relation', 'Sales.Orders', roles.a, 'SELECT')),
      db(grant('relation', 'Sales.Orders', roles.a, 'UPDATE')),
      db(grant('schema', 'public', roles.a, 'USAGE')),
      db(grant('relation', 'public.SELECT', roles.a, 'SELECT')),
      db(grant('schema', 'a$$b', roles.b, 'USAGE')),
      db(grant('relation', 'a$$b.t$$1', roles.b, 'SELECT')),
      db(grant('relation', 'a$$b.T$$1', roles.b, 'SELECT')),
      db(grant('relation', 'a$$b.s$$1', roles.b, 'USAGE')),
      db(grant('schema', 'has-dash', roles.b, 'USAGE')),
      db(grant('relation', 'has-dash.x-y', roles.b, 'INSERT')),
    ].sort();
    const diff = diffCatalog(before, await snapshot());
    expect(diff.removed).toEqual([]);
    expect(diff.added).toEqual(expected);

    // The app logs in as the mixed-case role and reads exactly the granted table, not its decoys.
    const token = await appToken(harness!, kc, {
      namespace,
      serviceAccount: 'acc-a',
      clientId: identities.a!.clientId,
    });
    const login = { database, role: roles.a, token };
    expect(await loginAndQuery(harness!, login, 'SELECT id FROM "Sales"."Orders"')).toBe('[{"id":42}]');
    expect(await loginAndQuery(harness!, login, 'SELECT id FROM "Sales"."orders"')).toMatch(
      /permission denied/,
    );
    expect(await loginAndQuery(harness!, login, 'SELECT id FROM "sales"."Orders"')).toMatch(
      /permission denied/,
    );
    expect(await loginAndQuery(harness!, login, 'SELECT id FROM public."select"')).toMatch(
      /permission denied/,
    );
  });

  it('deleting the resources revokes and drops exactly what they made: the catalog is as it was', async () => {
    for (const a of accesses) {
      await deleteAccess(custom, namespace, a.name);
    }
    for (const a of accesses) {
      const gone = await pollUntil(
        () => readAccess(custom, namespace, a.name),
        (x) => x === undefined,
        60_000,
        250,
      );
      expect(gone, JSON.stringify(gone?.status)).toBeUndefined();
    }
    expect(diffCatalog(initial, await snapshot())).toEqual({ added: [], removed: [] });
  });

  it('a role name the CRD admits but that differs only in case from the admin role is refused by the controller', async () => {
    const admin = harness!.azure.operator.postgresAdminRole;
    const variant = admin === admin.toUpperCase() ? admin.toLowerCase() : admin.toUpperCase();
    const before = await snapshot();
    const result = await create('case-admin', { roleName: variant });
    expect(result.status, result.message).toBe(201);
    const access = await pollUntil(
      () => readAccess(custom, namespace, 'case-admin'),
      (a) => conditionOf(a)?.status === 'False',
      30_000,
      250,
    );
    expect(conditionOf(access)).toMatchObject({ status: 'False', reason: 'RoleNameReserved' });
    expect(diffCatalog(before, await snapshot())).toEqual({ added: [], removed: [] });
  });

  it('quoteIdentifier: any string is refused or becomes exactly one object of exactly that name', async () => {
    const client = new pg.Client({ connectionString: superuserUrl(harness!, database) });
    await client.connect();
    const count = async (sql: string, params: unknown[] = []) =>
      Number((await client.query<{ n: string }>(sql, params)).rows[0]!.n);
    const rolesBefore = await count('SELECT count(*) AS n FROM pg_roles');
    const schemasBefore = await count('SELECT count(*) AS n FROM pg_namespace');
    const name = fc.oneof(
      nastyString,
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 70 }),
      fc
        .array(
          fc.constantFrom(
            '"',
            "'",
            ';',
            '--',
            '/*',
            '*/',
            '\\',
            '$$',
            ' ',
            'DROP ROLE postgres',
            'é',
            '\u200b',
            'о',
            'x',
          ),
          {
            minLength: 1,
            maxLength: 12,
          },
        )
        .map((parts) => parts.join('')),
    );
    let accepted = 0;
    let refused = 0;
    try {
      const details = await fc.check(
        fc.asyncProperty(name, async (n) => {
          const problem = identifierProblem(n);
          if (problem !== undefined) {
            expect(() => quoteIdentifier(n)).toThrow(InvalidIdentifierError);
            refused += 1;
            return;
          }
          // PostgreSQL reserves these for roles and schemas; the controller refuses them earlier.
          if (isReservedRoleName(n)) {
            expect(() => assertManageableRole(n)).toThrow();
            return;
          }
          accepted += 1;
          const q = quoteIdentifier(n);
          await client.query('BEGIN');
          try {
            await client.query(`CREATE ROLE ${q} NOLOGIN`);
            await client.query(`CREATE SCHEMA ${q}`);
            await client.query(`CREATE TABLE ${quoteQualified(n, n)} (id int)`);
            await client.query(`GRANT ${privilegeList('schema', ['USAGE'])} ON SCHEMA ${q} TO ${q}`);
            await client.query(
              `GRANT ${privilegeList('tables', ['SELECT'])} ON TABLE ${quoteQualified(n, n)} TO ${q}`,
            );
            // Exactly one new role and schema, and they carry exactly the name asked for.
            expect(await count('SELECT count(*) AS n FROM pg_roles')).toBe(rolesBefore + 1);
            expect(await count('SELECT count(*) AS n FROM pg_namespace')).toBe(schemasBefore + 1);
            expect(await count('SELECT count(*) AS n FROM pg_roles WHERE rolname = $1', [n])).toBe(1);
            expect(await count('SELECT count(*) AS n FROM pg_namespace WHERE nspname = $1', [n])).toBe(1);
            expect(
              await count(
                `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                  WHERE s.nspname = $1 AND c.relname = $1 AND has_table_privilege($1::text, c.oid, 'SELECT')`,
                [n],
              ),
            ).toBe(1);
          } finally {
            await client.query('ROLLBACK');
          }
        }),
        { seed: FUZZ_SEED, numRuns: 600, endOnFailure: true },
      );
      if (details.failed) {
        throw new Error(
          `FUZZ_SEED=${FUZZ_SEED}: ${JSON.stringify(details.counterexample)}: ${(details.errorInstance as Error)?.message}`,
        );
      }
    } finally {
      await client.end();
    }
    expect(accepted).toBeGreaterThan(200);
    expect(refused).toBeGreaterThan(20);
  });
});
