// Grants the server refuses the operator, and principals it cannot validate, against the harness
// PostgreSQL as the product runs it (through the Entra gateway, as the Entra admin). Issue 13 §2:
// - A GRANT the admin may not give either fails (42501) or, worse, succeeds with WARNING 01007
//   "no privileges were granted" / "not all privileges were granted". Both are refusals: applyPlan
//   never counts them as done, and GrantNotPermitted names the object and its owner.
// - One refused object does not hide the rest: PostgresDatabase.ensure applies what it may and
//   records in status.applied exactly what is in force, so a second reconcile and a deletion act
//   on the truth.
// - The pgaadauth stand-ins follow Azure's azure_pg_admin (test/harness/pgaadauth-standins.sql):
//   objects of a role handed to azure_pg_admin are grantable, as a non-restricted role's are on
//   Azure; the harness superuser stands for azuresu, whose objects are not.
// - pgaadauth_create_principal_with_oid fails with XX000 when told to (as Azure's does when it
//   cannot validate the object ID with Microsoft Graph): PrincipalNotValidated, then success once
//   the stand-in stops refusing.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppliedStatus, EntraDatabaseServer, Grant } from '../../src/api/types.ts';
import { TokenSource } from '../../src/azure/credentials.ts';
import { PostgresDatabase } from '../../src/controller/database.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { type AccessRecord, catalogQueries, planGrants } from '../../src/postgres/grant-plan.ts';
import { GrantNotPermittedError } from '../../src/postgres/grant-refusals.ts';
import { PoolRegistry, type PoolTarget } from '../../src/postgres/pools.ts';
import {
  ADMIN_DATABASE,
  applyPlan,
  currentPrivileges,
  dropRole,
  ensurePrincipal,
  type PoolFor,
  PrincipalNotValidatedError,
} from '../../src/postgres/roles.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, uniqueName } from '../harness/context.ts';
import { superuserQuery } from '../harness/scenario.ts';
import {
  ENTRA_AUDIENCE,
  operatorCredential,
  POSTGRES_SCOPE,
  serviceAccountToken,
  workloadIdentityCredential,
} from '../harness/workload-identity.ts';

const harness = harnessInfo();
const q = (name: string): string => pg.escapeIdentifier(name);

describe.skipIf(!harness)('grants the server refuses, and principals it cannot validate', () => {
  const suffix = Math.random().toString(36).slice(2, 8);
  const database = `ea_refusals_${suffix}`;
  const namespace = uniqueName('pg-refusals');
  const subscriptionId = '00000000-0000-0000-0000-00000000a013';
  const resourceGroup = uniqueName('rg');
  /** An app team's owner role (its migrations own the tables), handed to azure_pg_admin. */
  const vendor = `vendor_${suffix}`;
  const appRole = `reports-${suffix}`;
  const otherRole = `other-${suffix}`;
  const ownerRole = `owner-app-${suffix}`;
  const serverName = `refusals-${suffix}`;

  let kc: k8s.KubeConfig;
  let emulator: AzureEmulatorClient;
  let registry: PoolRegistry;
  let poolFor: PoolFor;
  let ca: string;
  let adminRole: string;
  let superuserRole: string;
  let app: { clientId: string; principalId: string };
  const ids = {} as Record<'other' | 'owner' | 'unvalidated', { principalId: string }>;
  let ops: PostgresDatabase;
  let server: EntraDatabaseServer;

  const su = <T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], db = database) =>
    superuserQuery<T>(harness!, sql, params, db);

  const has = async (role: string, object: string, privilege: string, kind = 'table'): Promise<boolean> =>
    (
      await su<{ ok: boolean }>(`SELECT has_${kind}_privilege($1, $2, $3) AS ok`, [role, object, privilege])
    )[0]!.ok;

  async function plan(desired: AccessRecord, previous?: AccessRecord) {
    const snapshots = await Promise.all(
      catalogQueries(desired, previous).map((query) => currentPrivileges(poolFor(query.database), query)),
    );
    return planGrants({ desired, applied: previous, snapshots });
  }

  /** The app, logging in as its role with its own Entra token; the SQL's rows, or the error's SQLSTATE. */
  async function asApp(sql: string): Promise<unknown[] | string> {
    const sa = await serviceAccountToken(kc, namespace, 'reports');
    const credential = await workloadIdentityCredential(harness!, app.clientId, sa);
    const client = new pg.Client({
      host: harness!.postgres.host,
      port: harness!.postgres.port,
      database,
      user: appRole,
      password: async () => (await credential.getToken(POSTGRES_SCOPE))!.token,
      ssl: { ca },
    });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } catch (error) {
      return (error as { code: string }).code;
    } finally {
      await client.end();
    }
  }

  const ensure = (grants: Grant[], applied?: AppliedStatus) =>
    ops.ensure({
      server,
      role: appRole,
      principalId: app.principalId,
      database,
      memberOf: [],
      grants,
      applied,
    });

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    ca = readFileSync(harness!.caFile, 'utf8');
    adminRole = harness!.azure.operator.postgresAdminRole;
    emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
    const operator = await operatorCredential(harness!, kc);
    const tokens = new TokenSource({ createCredential: () => operator, postgresScope: POSTGRES_SCOPE });
    registry = new PoolRegistry({ max: 2 });
    const endpoint = (db: string): PoolTarget => ({
      host: harness!.postgres.host,
      port: harness!.postgres.port,
      database: db,
      user: adminRole,
      sslMode: 'verify-full',
      caPem: ca,
    });
    poolFor = (db) => registry.get(endpoint(db), { getToken: () => tokens.getPostgresToken() });
    ops = new PostgresDatabase({
      core: kc.makeApiClient(k8s.CoreV1Api),
      tokensFor: () => tokens,
      defaultScope: POSTGRES_SCOPE,
      logger: createLogger('warn'),
    });
    server = {
      apiVersion: 'entra-access.io/v1alpha1',
      kind: 'EntraDatabaseServer',
      metadata: { name: serverName },
      spec: { host: harness!.postgres.host, port: harness!.postgres.port, sslMode: 'require', adminRole },
    };

    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reports' } } });
    const identity = await emulator.createIdentity({ subscriptionId, resourceGroup, name: 'reports' });
    await emulator.putFederatedCredential(identity.id, 'reports', {
      issuer: harness!.kubernetes.issuer,
      subject: `system:serviceaccount:${namespace}:reports`,
      audiences: [ENTRA_AUDIENCE],
    });
    app = identity;
    for (const name of ['other', 'owner', 'unvalidated'] as const) {
      ids[name] = await emulator.createIdentity({ subscriptionId, resourceGroup, name: `${name}-id` });
    }

    superuserRole = (await su<{ me: string }>('SELECT current_user AS me', [], 'postgres'))[0]!.me;
    await su(`CREATE DATABASE ${q(database)} OWNER ${q(adminRole)}`, [], 'postgres');
    // The admin's own objects (it created them, as on Azure), an app team's owner role handed to
    // azure_pg_admin (as every non-restricted role is on Azure), and objects of the harness
    // superuser, the stand-in for Azure's restricted azuresu.
    await su(`SET ROLE ${q(adminRole)};
      REVOKE CONNECT, TEMPORARY ON DATABASE ${q(database)} FROM PUBLIC;
      CREATE SCHEMA app;
      CREATE TABLE app.orders (id serial PRIMARY KEY, item text);
      INSERT INTO app.orders (item) VALUES ('apple');
      RESET ROLE;`);
    await su(`CREATE ROLE ${q(vendor)} NOLOGIN`, [], 'postgres');
    await su('SELECT pgaadauth_standin.azure_pg_admin_manages($1)', [vendor], 'postgres');
    await su(`GRANT USAGE, CREATE ON SCHEMA app TO ${q(vendor)};
      SET ROLE ${q(vendor)};
      CREATE TABLE app.feed (id int);
      INSERT INTO app.feed VALUES (7);
      RESET ROLE;
      CREATE TABLE app.ledger (id serial PRIMARY KEY, amount numeric);
      CREATE TABLE app.audit (id int);
      CREATE TABLE app.partial (id int);
      INSERT INTO app.partial VALUES (1);
      GRANT SELECT ON app.audit TO ${q(adminRole)};
      GRANT SELECT ON app.partial TO ${q(adminRole)} WITH GRANT OPTION;
      GRANT INSERT ON app.partial TO ${q(adminRole)};`);
  });

  afterAll(async () => {
    await ops?.end();
    await registry?.end();
    if (harness) {
      await su(`DROP DATABASE IF EXISTS ${q(database)} WITH (FORCE)`, [], 'postgres').catch(() => {});
      for (const role of [appRole, otherRole, ownerRole, vendor, `unvalidated-${suffix}`])
        await su(`DROP ROLE IF EXISTS ${q(role)}`, [], 'postgres').catch(() => {});
      await su(
        'DELETE FROM pgaadauth_standin.validation_faults WHERE object_id = ANY($1)',
        [Object.values(ids).map((i) => i.principalId)],
        'postgres',
      ).catch(() => {});
    }
    await kc
      ?.makeApiClient(k8s.CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => {});
  });

  it('models azure_pg_admin: what a handed-over role or a principal owns is grantable, what azuresu’s stand-in owns is not', async () => {
    const admin = poolFor(database);
    // A principal made by the stand-in is handed to azure_pg_admin like a role made by a test.
    await ensurePrincipal(poolFor(ADMIN_DATABASE), { role: ownerRole, principalId: ids.owner.principalId });
    await ensurePrincipal(poolFor(ADMIN_DATABASE), { role: otherRole, principalId: ids.other.principalId });
    await su(`GRANT USAGE, CREATE ON SCHEMA app TO ${q(ownerRole)};
      SET ROLE ${q(ownerRole)}; CREATE TABLE app.owned_by_app (id int); RESET ROLE;`);
    const memberships = await su<{ role: string; inherit: boolean; set: boolean }>(
      `SELECT r.rolname AS role, m.inherit_option AS inherit, m.set_option AS set FROM pg_auth_members m
         JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles a ON a.oid = m.member
        WHERE a.rolname = 'azure_pg_admin' AND r.rolname = ANY($1) ORDER BY 1`,
      [[vendor, ownerRole]],
    );
    expect(memberships).toEqual([
      { role: ownerRole, inherit: true, set: false },
      { role: vendor, inherit: true, set: false },
    ]);
    for (const table of ['app.feed', 'app.owned_by_app']) {
      await admin.query(`GRANT SELECT ON ${table} TO ${q(otherRole)}`);
      expect(await has(otherRole, table, 'SELECT')).toBe(true);
    }
    // The admin holds nothing on app.ledger: refused outright. On app.audit it holds SELECT
    // without grant option: PostgreSQL "succeeds" with a warning and grants nothing.
    await expect(admin.query(`GRANT SELECT ON app.ledger TO ${q(otherRole)}`)).rejects.toMatchObject({
      code: '42501',
    });
    const client = await admin.connect();
    const warnings: Array<{ code?: string | undefined; message?: string | undefined }> = [];
    client.on('notice', (notice) => warnings.push(notice));
    try {
      await client.query(`GRANT SELECT ON app.audit TO ${q(otherRole)}`);
    } finally {
      client.release();
    }
    expect(warnings).toEqual([
      expect.objectContaining({ code: '01007', message: 'no privileges were granted for "audit"' }),
    ]);
    expect(await has(otherRole, 'app.audit', 'SELECT')).toBe(false);
    // Restricted roles cannot be handed over.
    await expect(
      su('SELECT pgaadauth_standin.azure_pg_admin_manages($1)', [adminRole], 'postgres'),
    ).rejects.toThrow(/restricted in the stand-in/);
  });

  it('takes a GRANT that only warned (01007) for a refusal: GrantNotPermitted, and nothing of the database changed', async () => {
    await ensurePrincipal(poolFor(ADMIN_DATABASE), { role: appRole, principalId: app.principalId });
    const desired: AccessRecord = {
      role: appRole,
      database,
      memberOf: [],
      grants: [
        { target: 'database', privileges: ['CONNECT'] },
        { target: 'tables', schema: 'app', tables: ['audit'], privileges: ['SELECT'] },
      ],
    };
    const attempt = applyPlan(poolFor, (await plan(desired)).statements);
    await expect(attempt).rejects.toBeInstanceOf(GrantNotPermittedError);
    await expect(attempt).rejects.toMatchObject({
      reason: 'GrantNotPermitted',
      message: expect.stringContaining(
        `SELECT on table "app"."audit" in database "${database}" (owner "${superuserRole}"): no privileges were granted for "audit"`,
      ),
    });
    // All or nothing without keepGoing: CONNECT was rolled back with it.
    expect(await has(appRole, database, 'CONNECT', 'database')).toBe(false);
  });

  it('gives a 42501 its own reason, naming the object, its owner and what to do as Azure documents it', async () => {
    const desired: AccessRecord = {
      role: appRole,
      database,
      memberOf: [],
      grants: [{ target: 'tables', schema: 'app', tables: ['ledger'], privileges: ['SELECT', 'INSERT'] }],
    };
    const attempt = applyPlan(poolFor, (await plan(desired)).statements);
    await expect(attempt).rejects.toMatchObject({ reason: 'GrantNotPermitted', database });
    const message = await attempt.catch((error: Error) => error.message);
    expect(message).toContain(
      `SELECT, INSERT on table "app"."ledger" in database "${database}" (owner "${superuserRole}"): permission denied for table ledger`,
    );
    expect(message).toContain(`"${adminRole}" is a member of azure_pg_admin`);
    expect(message).toMatch(/any non-restricted role.*restricted role \(such as azuresu\)/);
    expect(message).toContain('WITH GRANT OPTION, or membership in the owner role');
  });

  it('applies what it may and records exactly what is in force; the next reconcile and a deletion act on it', async () => {
    const grants: Grant[] = [
      { target: 'database', privileges: ['CONNECT'] },
      { target: 'schema', schema: 'app', privileges: ['USAGE'] },
      // Every table of app: orders and feed may be granted, ledger and audit may not.
      { target: 'tables', schema: 'app', privileges: ['SELECT'] },
      // partial: the admin may give SELECT but not INSERT ("not all privileges were granted").
      { target: 'tables', schema: 'app', tables: ['partial'], privileges: ['SELECT', 'INSERT'] },
      // orders_id_seq is the admin's, ledger_id_seq azuresu's stand-in's.
      { target: 'sequences', schema: 'app', privileges: ['USAGE'] },
    ];
    const first = await ensure(grants);
    const refused = (first.refused ?? []).map((r) => [
      r.object.name,
      r.privileges.join(','),
      r.code,
      r.owner,
    ]);
    expect(refused.sort()).toEqual(
      [
        ['audit', 'SELECT', '01007', superuserRole],
        ['ledger', 'SELECT', '42501', superuserRole],
        ['ledger_id_seq', 'USAGE', '42501', superuserRole],
        ['partial', 'INSERT', '01007', superuserRole],
      ].sort(),
    );
    expect(first.admin).toEqual({ role: adminRole, azurePgAdmin: true });
    expect(first.applied).toEqual({
      server: serverName,
      principalId: app.principalId,
      role: appRole,
      database,
      memberOf: [],
      grants: [
        { target: 'database', privileges: ['CONNECT'] },
        { target: 'schema', schema: 'app', privileges: ['USAGE'] },
        { target: 'sequences', schema: 'app', sequences: ['orders_id_seq'], privileges: ['USAGE'] },
        {
          target: 'tables',
          schema: 'app',
          tables: ['feed', 'orders', 'owned_by_app', 'partial'],
          privileges: ['SELECT'],
        },
      ],
    });
    // What the record says is what the app has.
    expect(await asApp('SELECT item FROM app.orders')).toEqual([{ item: 'apple' }]);
    expect(await asApp('SELECT id FROM app.feed')).toEqual([{ id: 7 }]);
    expect(await asApp('SELECT id FROM app.partial')).toEqual([{ id: 1 }]);
    expect(await asApp('SELECT * FROM app.ledger')).toBe('42501');
    expect(await asApp('SELECT * FROM app.audit')).toBe('42501');
    expect(await asApp('INSERT INTO app.partial VALUES (2)')).toBe('42501');

    // The next reconcile tries again only what is missing, is refused the same, and records the same.
    const second = await ensure(grants, first.applied);
    expect(second.applied).toEqual(first.applied);
    expect((second.refused ?? []).length).toBe(4);

    // The owner lets the admin grant SELECT on ledger: it is granted and recorded.
    await su(`GRANT SELECT ON app.ledger TO ${q(adminRole)} WITH GRANT OPTION`);
    const third = await ensure(grants, second.applied);
    expect((third.refused ?? []).map((r) => r.object.name).sort()).toEqual([
      'audit',
      'ledger_id_seq',
      'partial',
    ]);
    expect(third.applied.grants).toContainEqual({
      target: 'tables',
      schema: 'app',
      tables: ['feed', 'ledger', 'orders', 'owned_by_app', 'partial'],
      privileges: ['SELECT'],
    });
    expect(await asApp('SELECT count(*)::int AS n FROM app.ledger')).toEqual([{ n: 0 }]);

    // A deletion revokes exactly what is in force, and the role, holding nothing more, is dropped.
    const record: AccessRecord = {
      role: appRole,
      database,
      memberOf: third.applied.memberOf ?? [],
      grants: third.applied.grants ?? [],
    };
    expect(await dropRole(poolFor, { role: appRole, applied: record })).toMatchObject({ dropped: true });
  });

  it('reports an object ID pgaadauth cannot validate (XX000) as PrincipalNotValidated, and creates the role once it can', async () => {
    const admin = poolFor(ADMIN_DATABASE);
    const role = `unvalidated-${suffix}`;
    const oid = ids.unvalidated.principalId;
    const refusals = async () =>
      Number(
        (
          await su<{ n: string }>(
            'SELECT last_value - CASE WHEN is_called THEN 0 ELSE 1 END AS n FROM pgaadauth_standin.validation_refusals',
            [],
            'postgres',
          )
        )[0]!.n,
      );
    const before = await refusals();
    for (const mode of ['not_found', 'wrong_type', 'unreachable']) {
      await su(
        `INSERT INTO pgaadauth_standin.validation_faults (object_id, mode) VALUES ($1, $2)
           ON CONFLICT (object_id) DO UPDATE SET mode = excluded.mode, until = NULL`,
        [oid, mode],
        'postgres',
      );
      const attempt = ensurePrincipal(admin, { role, principalId: oid });
      await expect(attempt).rejects.toBeInstanceOf(PrincipalNotValidatedError);
      await expect(attempt).rejects.toMatchObject({
        reason: 'PrincipalNotValidated',
        principalId: oid,
        message: expect.stringContaining(`Could not validate AAD user ${oid}`),
      });
    }
    expect(await refusals()).toBe(before + 3);
    expect((await su('SELECT 1 FROM pg_roles WHERE rolname = $1', [role], 'postgres')).length).toBe(0);

    // Replication caught up: refused until a moment that has passed.
    await su(
      "UPDATE pgaadauth_standin.validation_faults SET until = now() - interval '1 second' WHERE object_id = $1",
      [oid],
      'postgres',
    );
    expect(await ensurePrincipal(admin, { role, principalId: oid })).toMatchObject({ role, created: true });
    await su(`DROP ROLE ${q(role)}`, [], 'postgres');
  });
});
