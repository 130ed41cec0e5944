// The PostgreSQL layer against the harness, as the product runs it: the operator logs in through
// the emulator's Entra gateway as the server's Entra admin with a token from its workload-identity
// credential, creates principals, plans and applies grants, and drops roles; the app logs in with
// its own token and finds exactly the access it was given.
//
// Set-up models Azure, where the Entra admin is not a superuser: it has CREATEROLE and CREATEDB,
// and can grant on what it owns. So the test database is owned by the admin role, and the app's
// schema, tables and group role are created *as* the admin (superuser `SET ROLE`), which makes the
// admin their owner (and gives it ADMIN OPTION on the group) exactly as if it had created them.
// The superuser connection is for set-up and for checking from outside only.

import { readFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { TokenCredential } from '@azure/identity';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AccessRecord, catalogQueries, planGrants } from '../../src/postgres/grant-plan.ts';
import { PoolRegistry, type PoolTarget, type TokenSource } from '../../src/postgres/pools.ts';
import {
  ADMIN_DATABASE,
  AdminPrincipalError,
  applyPlan,
  currentPrivileges,
  dropRole,
  ensurePrincipal,
  type PoolFor,
  RoleConflictError,
  serverInfo,
} from '../../src/postgres/roles.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, uniqueName } from '../harness/context.ts';
import {
  ENTRA_AUDIENCE,
  operatorCredential,
  POSTGRES_SCOPE,
  serviceAccountToken,
  workloadIdentityCredential,
} from '../harness/workload-identity.ts';

const harness = harnessInfo();
const q = (name: string): string => pg.escapeIdentifier(name);

describe.skipIf(!harness)('PostgreSQL roles and grants as the Entra admin, through the gateway', () => {
  const suffix = Math.random().toString(36).slice(2, 8);
  const database = `ea_roles_${suffix}`;
  const namespace = uniqueName('pg-roles');
  const appRole = `orders-api-${suffix}`;
  const group = `orders_rw_${suffix}`;
  const legacyRole = `legacy-${suffix}`;
  const plainRole = `plain-${suffix}`;
  const subscriptionId = '00000000-0000-0000-0000-00000000a002';
  const resourceGroup = uniqueName('rg');
  // Injection-shaped names: each must still be exactly one identifier.
  const evilRole = `x"; DROP TABLE app.orders; --${suffix}`;
  const evilSchema = `s"; DELETE FROM app.orders; --`;
  const evilTable = `t'); DROP SCHEMA app CASCADE; /*`;
  const unicodeTable = 'Bestellungen_ü_注文';
  const evilGroup = `g"; ALTER ROLE x SUPERUSER; --${suffix}`;

  let adminRole: string;
  let ca: string;
  let kc: k8s.KubeConfig;
  let emulator: AzureEmulatorClient;
  let operator: TokenCredential;
  let registry: PoolRegistry;
  let poolFor: PoolFor;
  let superuser: pg.Client;
  let inDatabase: pg.Client;
  let app: { clientId: string; principalId: string };
  const others = {} as Record<'legacy' | 'conflict' | 'evil', { principalId: string }>;
  let applied: AccessRecord | undefined;

  const adminTokens: TokenSource = {
    getToken: async () => (await operator.getToken(POSTGRES_SCOPE))!.token,
  };

  function endpoint(db: string): PoolTarget {
    return {
      host: harness!.postgres.host,
      port: harness!.postgres.port,
      database: db,
      user: adminRole,
      sslMode: 'verify-full',
      caPem: ca,
    };
  }

  async function reconcile(desired: AccessRecord, previous: AccessRecord | undefined) {
    const snapshots = await Promise.all(
      catalogQueries(desired, previous).map((query) => currentPrivileges(poolFor(query.database), query)),
    );
    const plan = planGrants({ desired, applied: previous, snapshots });
    const result = await applyPlan(poolFor, plan.statements);
    return { plan, result };
  }

  /** The app, logging in as its role with a fresh Entra token from its own credential. */
  async function appClient(db = database): Promise<pg.Client> {
    const sa = await serviceAccountToken(kc, namespace, 'orders-api');
    const credential = await workloadIdentityCredential(harness!, app.clientId, sa);
    const client = new pg.Client({
      host: harness!.postgres.host,
      port: harness!.postgres.port,
      database: db,
      user: appRole,
      password: async () => (await credential.getToken(POSTGRES_SCOPE))!.token,
      ssl: { ca },
    });
    await client.connect();
    return client;
  }

  async function asApp<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await appClient();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }

  async function sqlState(promise: Promise<unknown>): Promise<string | undefined> {
    try {
      await promise;
    } catch (error) {
      return (error as { code?: string }).code;
    }
    throw new Error('expected the statement to fail');
  }

  const grantsFor = (extra: AccessRecord['grants'] = []): AccessRecord['grants'] => [
    { target: 'database', privileges: ['CONNECT'] },
    { target: 'schema', schema: 'app', privileges: ['USAGE'] },
    { target: 'tables', schema: 'app', tables: ['orders'], privileges: ['SELECT'] },
    ...extra,
  ];

  /**
   * DDL the server logged (log_statement=ddl) for this test's database or roles while `fn` ran.
   * A marker statement issued afterwards bounds the window, so nothing is missed to log latency.
   */
  async function ddlDuring(fn: () => Promise<void>): Promise<string[] | undefined> {
    const logFile = harness!.postgres.logFile;
    if (!logFile) {
      await fn();
      return undefined;
    }
    const start = (await stat(logFile)).size;
    await fn();
    const marker = `marker-${Math.random().toString(36).slice(2)}`;
    await superuser.query(`COMMENT ON DATABASE ${q(database)} IS '${marker}'`);
    for (let i = 0; i < 100; i++) {
      const handle = await open(logFile, 'r');
      const { size } = await handle.stat();
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      await handle.close();
      const text = buffer.toString('utf8');
      const end = text.indexOf(marker);
      if (end >= 0) {
        return text
          .slice(0, end)
          .split('\n')
          .filter((line) => line.includes('statement:'))
          .filter(
            (line) =>
              line.includes(`@${database} `) || line.includes(q(appRole)) || line.includes(q(legacyRole)),
          );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`marker ${marker} never reached ${logFile}`);
  }

  beforeAll(async () => {
    adminRole = harness!.azure.operator.postgresAdminRole;
    ca = readFileSync(harness!.caFile, 'utf8');
    kc = adminKubeConfig(harness!);
    emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
    operator = await operatorCredential(harness!, kc);
    registry = new PoolRegistry({ max: 2 });
    poolFor = (db) => registry.get(endpoint(db), adminTokens);

    // The app: a managed identity federated to a ServiceAccount, as the controller would leave it.
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'orders-api' } } });
    const appIdentity = await emulator.createIdentity({ subscriptionId, resourceGroup, name: 'orders-api' });
    await emulator.putFederatedCredential(appIdentity.id, 'orders-api', {
      issuer: harness!.kubernetes.issuer,
      subject: `system:serviceaccount:${namespace}:orders-api`,
      audiences: [ENTRA_AUDIENCE],
    });
    app = appIdentity;
    for (const name of ['legacy', 'conflict', 'evil'] as const) {
      others[name] = await emulator.createIdentity({ subscriptionId, resourceGroup, name: `${name}-id` });
    }

    superuser = new pg.Client({ connectionString: harness!.postgres.superuserUrl });
    await superuser.connect();
    await superuser.query(`CREATE DATABASE ${q(database)} OWNER ${q(adminRole)}`);
    inDatabase = new pg.Client({
      connectionString: harness!.postgres.superuserUrl.replace('/postgres?', `/${database}?`),
    });
    await inDatabase.connect();
    await inDatabase.query(`SET ROLE ${q(adminRole)}`);
    await inDatabase.query(`
      REVOKE CONNECT, TEMPORARY ON DATABASE ${q(database)} FROM PUBLIC;
      CREATE SCHEMA app;
      CREATE TABLE app.orders (id serial PRIMARY KEY, item text NOT NULL);
      CREATE TABLE app.payments (id int PRIMARY KEY, amount numeric NOT NULL);
      CREATE TABLE app.secrets (id int PRIMARY KEY, value text NOT NULL);
      INSERT INTO app.orders (item) VALUES ('apple'), ('pear');
      INSERT INTO app.payments VALUES (1, 9.5);
      INSERT INTO app.secrets VALUES (1, 'hunter2');
      CREATE ROLE ${q(group)} NOLOGIN;
      GRANT SELECT, INSERT ON app.orders TO ${q(group)};
      GRANT USAGE ON SEQUENCE app.orders_id_seq TO ${q(group)};
      CREATE SCHEMA ${q(evilSchema)};
      CREATE TABLE ${q(evilSchema)}.${q(evilTable)} (v text);
      CREATE TABLE ${q(evilSchema)}.${q(unicodeTable)} (v text);
      INSERT INTO ${q(evilSchema)}.${q(unicodeTable)} VALUES ('grüße');
      CREATE ROLE ${q(evilGroup)} NOLOGIN;`);
    await inDatabase.query('RESET ROLE');
  });

  afterAll(async () => {
    await registry?.end();
    await inDatabase?.end().catch(() => {});
    if (superuser) {
      await superuser.query(`DROP DATABASE IF EXISTS ${q(database)} WITH (FORCE)`).catch(() => {});
      for (const role of [appRole, legacyRole, plainRole, group, evilRole, evilGroup]) {
        await superuser.query(`DROP ROLE IF EXISTS ${q(role)}`).catch(() => {});
      }
      await superuser.end();
    }
    await kc
      ?.makeApiClient(k8s.CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => {});
  });

  it('reports the server version, pgaadauth, and that the operator is an Entra admin', async () => {
    const info = await serverInfo(poolFor(ADMIN_DATABASE));
    expect(info).toMatchObject({
      version: harness!.postgres.version,
      currentUser: adminRole,
      pgaadauth: true,
      entraAdmin: true,
    });
    expect(info.versionNum).toBeGreaterThanOrEqual(160000);
  });

  it('tells the token source when a login is refused (28P01), and the next connection gets a new token', async () => {
    let calls = 0;
    const refusals: string[] = [];
    const flaky: TokenSource = {
      getToken: async () => (++calls === 1 ? 'a-stale-token' : adminTokens.getToken()),
      onAuthFailure: (error) => refusals.push(error.message),
    };
    const own = new PoolRegistry({ max: 1 });
    try {
      const pool = own.get(endpoint(ADMIN_DATABASE), flaky);
      await expect(pool.query('SELECT 1')).rejects.toMatchObject({ code: '28P01' });
      expect(refusals).toEqual([`password authentication failed for user "${adminRole}"`]);
      const { rows } = await pool.query('SELECT current_user AS me');
      expect(rows[0].me).toBe(adminRole);
      expect(calls).toBe(2);
    } finally {
      await own.end();
    }
  });

  it('creates the principal once; a second ensure creates nothing', async () => {
    const admin = poolFor(ADMIN_DATABASE);
    expect(await ensurePrincipal(admin, { role: appRole, principalId: app.principalId })).toEqual({
      role: appRole,
      created: true,
      adoptedExisting: false,
      loginRestored: false,
    });
    expect(await ensurePrincipal(admin, { role: appRole, principalId: app.principalId })).toEqual({
      role: appRole,
      created: false,
      adoptedExisting: false,
      loginRestored: false,
    });
    const { rows } = await superuser.query(
      'SELECT rolname FROM pgaadauth_list_principals(false) WHERE "objectId" = $1',
      [app.principalId],
    );
    expect(rows).toEqual([{ rolname: appRole }]);
  });

  it('uses an existing principal under another role name instead of creating a second one', async () => {
    const admin = poolFor(ADMIN_DATABASE);
    // Made earlier by hand by an administrator, under its own name.
    await admin.query("SELECT pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)", [
      legacyRole,
      others.legacy.principalId,
    ]);
    const wanted = `wanted-${suffix}`;
    expect(await ensurePrincipal(admin, { role: wanted, principalId: others.legacy.principalId })).toEqual({
      role: legacyRole,
      created: false,
      adoptedExisting: true,
      loginRestored: false,
    });
    const roles = await superuser.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [wanted]);
    expect(roles.rowCount).toBe(0);
    const principals = await superuser.query(
      'SELECT rolname FROM pgaadauth_list_principals(false) WHERE "objectId" = $1',
      [others.legacy.principalId],
    );
    expect(principals.rows).toEqual([{ rolname: legacyRole }]);
  });

  it("never hands out an Entra admin's role: the operator's own identity is refused", async () => {
    const admin = poolFor(ADMIN_DATABASE);
    const operator = harness!.azure.operator;
    const attempt = ensurePrincipal(admin, { role: `app-${suffix}`, principalId: operator.principalId });
    await expect(attempt).rejects.toBeInstanceOf(AdminPrincipalError);
    await expect(attempt).rejects.toMatchObject({
      reason: 'RoleConflict',
      message: expect.stringMatching(/is a Microsoft Entra admin of this server .*use an app identity/),
    });
    const roles = await superuser.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [`app-${suffix}`]);
    expect(roles.rowCount).toBe(0);
  });

  it('refuses a role name held by a plain role or another principal (RoleConflict), changing nothing', async () => {
    await superuser.query(`CREATE ROLE ${q(plainRole)} LOGIN`);
    const state = async () => ({
      roles: (await superuser.query('SELECT rolname, rolcanlogin FROM pg_roles ORDER BY 1')).rows,
      principals: (await superuser.query('SELECT * FROM pgaadauth_standin.principals ORDER BY 1')).rows,
    });
    const before = await state();
    const admin = poolFor(ADMIN_DATABASE);
    const plain = ensurePrincipal(admin, { role: plainRole, principalId: others.conflict.principalId });
    await expect(plain).rejects.toBeInstanceOf(RoleConflictError);
    await expect(plain).rejects.toMatchObject({
      reason: 'RoleConflict',
      role: plainRole,
      existingObjectId: undefined,
    });
    const taken = ensurePrincipal(admin, { role: legacyRole, principalId: others.conflict.principalId });
    await expect(taken).rejects.toMatchObject({
      reason: 'RoleConflict',
      existingObjectId: others.legacy.principalId,
      message: expect.stringMatching(/another Microsoft Entra object/),
    });
    // Other test files may add roles concurrently: compare ours and every principal.
    const after = await state();
    const ours = (rows: Array<{ rolname: string }>) => rows.filter((r) => r.rolname.endsWith(suffix));
    expect(ours(after.roles)).toEqual(ours(before.roles));
    expect(after.principals.filter((p) => p.object_id === others.conflict.principalId)).toEqual([]);
    expect(after.principals.filter((p) => p.rolname.endsWith(suffix))).toEqual(
      before.principals.filter((p) => p.rolname.endsWith(suffix)),
    );
  });

  it('applies grants: the app logs in with its token, a granted SELECT works, an ungranted table is refused', async () => {
    // Without CONNECT (revoked from PUBLIC) the app cannot even open the database.
    expect(await sqlState(appClient())).toBe('42501');

    const desired: AccessRecord = {
      role: appRole,
      database,
      memberOf: [],
      grants: grantsFor([{ target: 'tables', schema: 'app', tables: ['payments'], privileges: ['SELECT'] }]),
    };
    const { plan, result } = await reconcile(desired, applied);
    expect(plan.statements.map((s) => [s.scope, s.sql])).toEqual([
      ['cluster', `GRANT CONNECT ON DATABASE ${q(database)} TO ${q(appRole)}`],
      ['database', `GRANT USAGE ON SCHEMA "app" TO ${q(appRole)}`],
      ['database', `GRANT SELECT ON TABLE "app"."orders", "app"."payments" TO ${q(appRole)}`],
    ]);
    expect(result).toEqual({ executed: 3, databases: [database], warnings: [], refused: [] });
    applied = plan.applied;

    await asApp(async (client) => {
      const orders = await client.query('SELECT item FROM app.orders ORDER BY id');
      expect(orders.rows.map((r) => r.item)).toEqual(['apple', 'pear']);
      expect((await client.query('SELECT amount FROM app.payments')).rows).toEqual([{ amount: '9.5' }]);
      expect(await sqlState(client.query('SELECT * FROM app.secrets'))).toBe('42501');
      expect(await sqlState(client.query("INSERT INTO app.orders (item) VALUES ('plum')"))).toBe('42501');
    });
  });

  it('applies concurrent reconciles of roles sharing the database without a catalog conflict', async () => {
    // Every worker (and replica) may grant on the same database and schema at once; PostgreSQL
    // refuses two concurrent updates of one ACL with "tuple concurrently updated" (XX000).
    const roles = Array.from({ length: 12 }, (_, i) => `conc-${i}-${suffix}`);
    for (const role of roles) await superuser.query(`CREATE ROLE ${q(role)}`);
    try {
      for (let round = 0; round < 3; round++) {
        const results = await Promise.allSettled(
          roles.map((role) => reconcile({ role, database, memberOf: [], grants: grantsFor() }, undefined)),
        );
        const failures = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
        expect(failures).toEqual([]);
        for (const role of roles) {
          await superuser.query(`REVOKE ALL ON DATABASE ${q(database)} FROM ${q(role)}`);
          await inDatabase.query(`REVOKE ALL ON SCHEMA app FROM ${q(role)}`);
          await inDatabase.query(`REVOKE ALL ON ALL TABLES IN SCHEMA app FROM ${q(role)}`);
        }
      }
    } finally {
      for (const role of roles) {
        await superuser.query(`REVOKE ALL ON DATABASE ${q(database)} FROM ${q(role)}`).catch(() => {});
        await inDatabase.query(`REVOKE ALL ON SCHEMA app FROM ${q(role)}`).catch(() => {});
        await inDatabase.query(`REVOKE ALL ON ALL TABLES IN SCHEMA app FROM ${q(role)}`).catch(() => {});
        await superuser.query(`DROP ROLE IF EXISTS ${q(role)}`).catch(() => {});
      }
    }
  });

  it('revokes a grant that is removed', async () => {
    const desired: AccessRecord = { role: appRole, database, memberOf: [], grants: grantsFor() };
    const { plan } = await reconcile(desired, applied);
    expect(plan.statements.map((s) => s.sql)).toEqual([
      `REVOKE SELECT ON TABLE "app"."payments" FROM ${q(appRole)}`,
    ]);
    applied = plan.applied;
    await asApp(async (client) => {
      expect(await sqlState(client.query('SELECT * FROM app.payments'))).toBe('42501');
      expect((await client.query('SELECT count(*)::int AS n FROM app.orders')).rows[0].n).toBe(2);
    });
  });

  it('grants an added memberOf, and the app gets the group’s privileges', async () => {
    const desired: AccessRecord = { role: appRole, database, memberOf: [group], grants: grantsFor() };
    const { plan } = await reconcile(desired, applied);
    expect(plan.statements).toEqual([
      {
        action: 'grant',
        scope: 'cluster',
        database,
        sql: `GRANT ${q(group)} TO ${q(appRole)}`,
        membership: { role: appRole, group },
      },
    ]);
    applied = plan.applied;
    const members = await superuser.query(
      `SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
        JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1`,
      [appRole],
    );
    expect(members.rows).toEqual([{ rolname: group }]);
    await asApp(async (client) => {
      await client.query("INSERT INTO app.orders (item) VALUES ('plum')");
    });
  });

  it('is free in the steady state: the plan is empty and the server logs no DDL', async () => {
    const desired: AccessRecord = { role: appRole, database, memberOf: [group], grants: grantsFor() };
    let statements = -1;
    const ddl = await ddlDuring(async () => {
      const principal = await ensurePrincipal(poolFor(ADMIN_DATABASE), {
        role: appRole,
        principalId: app.principalId,
      });
      expect(principal.created).toBe(false);
      const { plan, result } = await reconcile(desired, applied);
      statements = plan.statements.length;
      expect(result.executed).toBe(0);
      expect(plan.applied).toEqual(applied);
    });
    expect(statements).toBe(0);
    if (ddl) expect(ddl).toEqual([]);

    // The log does see this test's DDL when there is some (so the zero above means something).
    const changed = await ddlDuring(async () => {
      const { plan } = await reconcile({ ...desired, memberOf: [] }, applied);
      expect(plan.statements).toHaveLength(1);
      applied = plan.applied;
    });
    if (changed)
      expect(changed).toEqual([expect.stringContaining(`statement: REVOKE ${q(group)} FROM ${q(appRole)}`)]);
  });

  it('drops a role that owns nothing, after revoking what was applied', async () => {
    const desired: AccessRecord = {
      role: legacyRole,
      database,
      memberOf: [group],
      grants: [
        { target: 'database', privileges: ['CONNECT'] },
        { target: 'schema', schema: 'app', privileges: ['USAGE'] },
        { target: 'tables', schema: 'app', privileges: ['SELECT'] },
      ],
    };
    const { plan } = await reconcile(desired, undefined);
    expect(plan.statements.map((s) => s.sql)).toContain(
      `GRANT SELECT ON ALL TABLES IN SCHEMA "app" TO ${q(legacyRole)}`,
    );

    const result = await dropRole(poolFor, { role: legacyRole, applied: plan.applied });
    expect(result).toEqual({ dropped: true, existed: true, revoked: 4 });
    expect((await superuser.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [legacyRole])).rowCount).toBe(
      0,
    );
    const principals = await superuser.query(
      'SELECT 1 FROM pgaadauth_list_principals(false) WHERE rolname = $1',
      [legacyRole],
    );
    expect(principals.rowCount).toBe(0);
    // Deleting again is a no-op.
    expect(await dropRole(poolFor, { role: legacyRole, applied: plan.applied })).toEqual({
      dropped: true,
      existed: false,
      revoked: 0,
    });
  });

  it('keeps a role that owns a table: login revoked, table and rows intact, grants revoked', async () => {
    const withCreate: AccessRecord = {
      role: appRole,
      database,
      memberOf: [group],
      grants: [...grantsFor(), { target: 'schema', schema: 'app', privileges: ['USAGE', 'CREATE'] }],
    };
    applied = (await reconcile(withCreate, applied)).plan.applied;
    await asApp(async (client) => {
      await client.query(
        "CREATE TABLE app.app_owned (v text); INSERT INTO app.app_owned VALUES ('a'), ('b'), ('c')",
      );
    });

    const result = await dropRole(poolFor, { role: appRole, applied });
    expect(result).toMatchObject({
      dropped: false,
      reason: 'RoleOwnsObjects',
      objects: [{ database, description: 'table app.app_owned' }],
    });
    const role = await superuser.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [appRole]);
    expect(role.rows).toEqual([{ rolcanlogin: false }]);
    const rows = await inDatabase.query('SELECT v FROM app.app_owned ORDER BY v');
    expect(rows.rows.map((r) => r.v)).toEqual(['a', 'b', 'c']);
    expect((await inDatabase.query('SELECT count(*)::int AS n FROM app.orders')).rows[0].n).toBe(3);
    const privileges = await inDatabase.query(
      `SELECT has_table_privilege($1, 'app.orders', 'SELECT') AS orders,
              has_schema_privilege($1, 'app', 'USAGE') AS usage,
              pg_has_role($1, $2, 'MEMBER') AS member`,
      [appRole, group],
    );
    expect(privileges.rows).toEqual([{ orders: false, usage: false, member: false }]);
    // The gateway accepts the token; PostgreSQL refuses the login of a NOLOGIN role.
    expect(await sqlState(appClient())).toBe('28000');
    // A repeated delete changes nothing and says the same.
    expect(await dropRole(poolFor, { role: appRole, applied })).toMatchObject({
      dropped: false,
      reason: 'RoleOwnsObjects',
      revoked: 0,
    });
  });

  it('gives a kept role its login back when the identity is wanted again', async () => {
    expect(
      await ensurePrincipal(poolFor(ADMIN_DATABASE), { role: appRole, principalId: app.principalId }),
    ).toEqual({
      role: appRole,
      created: false,
      adoptedExisting: false,
      loginRestored: true,
    });
    // PUBLIC may connect to `postgres`; the test database needs the grants again.
    const client = await appClient(ADMIN_DATABASE);
    expect((await client.query('SELECT current_user AS me')).rows[0].me).toBe(appRole);
    await client.end();
  });

  it('quotes injection-shaped and unicode identifiers, and nothing else in the database changes', async () => {
    const admin = poolFor(ADMIN_DATABASE);
    expect(
      await ensurePrincipal(admin, { role: evilRole, principalId: others.evil.principalId }),
    ).toMatchObject({
      role: evilRole,
      created: true,
    });
    const state = async () => ({
      relations: (
        await inDatabase.query(
          `SELECT n.nspname, c.relname, c.relkind, c.relacl::text AS acl FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2`,
        )
      ).rows,
      schemas: (await inDatabase.query('SELECT nspname, nspacl::text AS acl FROM pg_namespace ORDER BY 1'))
        .rows,
      orders: (await inDatabase.query('SELECT id, item FROM app.orders ORDER BY id')).rows,
      superusers: (await superuser.query('SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY 1')).rows,
      ours: (
        await superuser.query(
          'SELECT rolname, rolcanlogin, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1',
          [`%${suffix}`],
        )
      ).rows,
    });
    const before = await state();

    const desired: AccessRecord = {
      role: evilRole,
      database,
      memberOf: [evilGroup],
      grants: [
        { target: 'database', privileges: ['CONNECT'] },
        { target: 'schema', schema: evilSchema, privileges: ['USAGE'] },
        { target: 'tables', schema: evilSchema, tables: [evilTable, unicodeTable], privileges: ['SELECT'] },
      ],
    };
    const { plan } = await reconcile(desired, undefined);
    expect(plan.statements.map((s) => s.sql)).toEqual([
      `GRANT ${q(evilGroup)} TO ${q(evilRole)}`,
      `GRANT CONNECT ON DATABASE ${q(database)} TO ${q(evilRole)}`,
      `GRANT USAGE ON SCHEMA ${q(evilSchema)} TO ${q(evilRole)}`,
      `GRANT SELECT ON TABLE ${q(evilSchema)}.${q(unicodeTable)}, ${q(evilSchema)}.${q(evilTable)} TO ${q(evilRole)}`,
    ]);

    const check = await inDatabase.query(
      `SELECT has_table_privilege($1, format('%I.%I', $2::text, $3::text), 'SELECT') AS evil,
              has_table_privilege($1, format('%I.%I', $2::text, $4::text), 'SELECT') AS unicode,
              has_schema_privilege($1, $2, 'USAGE') AS usage,
              pg_has_role($1, $5, 'MEMBER') AS member,
              has_table_privilege($1, 'app.orders', 'SELECT') AS orders`,
      [evilRole, evilSchema, evilTable, unicodeTable, evilGroup],
    );
    expect(check.rows).toEqual([{ evil: true, unicode: true, usage: true, member: true, orders: false }]);

    // Everything outside the named objects is as it was: no table, row, schema or role changed.
    const after = await state();
    const outside = <T extends { nspname: string }>(rows: T[]) =>
      rows.filter((r) => r.nspname !== evilSchema);
    expect(outside(after.relations)).toEqual(outside(before.relations));
    expect(outside(after.schemas)).toEqual(outside(before.schemas));
    expect(after.relations.length).toBe(before.relations.length);
    expect(after.orders).toEqual(before.orders);
    expect(after.superusers).toEqual(before.superusers);
    expect(after.ours).toEqual(before.ours);

    // Steady state holds with such names too; and the role, owning nothing, drops cleanly.
    expect((await reconcile(desired, plan.applied)).plan.statements).toEqual([]);
    expect(await dropRole(poolFor, { role: evilRole, applied: plan.applied })).toEqual({
      dropped: true,
      existed: true,
      revoked: 4,
    });
    expect((await superuser.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [evilRole])).rowCount).toBe(0);
  });
});
