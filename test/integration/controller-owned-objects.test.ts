// Apps that own their schema (issue 13 §3), against every real part: an app that runs its own
// migrations gets what a migration needs from the API (CREATE on the database and the schema), and
// a real migration tool (node-pg-migrate, test/support/migrations/) run as the app through the
// Entra gateway makes tables, an index, a schema, a view and the trusted extension pgcrypto. Then
// spec.ownedObjects decides what deleting the access does with them:
// - Reassign: every object goes to the role reassignTo names, rows intact, and the app's role is
//   dropped (REASSIGN OWNED, DROP OWNED, DROP ROLE); the admin keeps no membership it lent itself;
// - a reassignTo role that does not exist stops the deletion (ReassignOwnedFailed, nothing
//   dropped, the resource stays) until it is created;
// - a role the server's allowedMemberOf does not list is refused at admission (nothing written) and
//   again at deletion (ReassignTargetNotAllowed); policy Keep then lets the deletion finish with
//   the role kept without login, as it always was (controller-lifecycle.test.ts: the default).
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_PLURAL } from '../../src/api/constants.ts';
import type { EntraDatabaseAccessSpec, Grant } from '../../src/api/types.ts';
import type { ControllerComponent } from '../../src/controller/component.ts';
import { AzureEmulatorClient, type IdentityView } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, poller, uniqueName } from '../harness/context.ts';
import { API } from '../harness/kube.ts';
import {
  type AccessOptions,
  appToken as appTokenOf,
  conditionOf,
  createAccess as createAccessIn,
  createAppDatabase,
  createDatabaseServer,
  createOptedInNamespace,
  ddlCount,
  deleteAccess,
  deleteAccessAndWait,
  ficsOf as ficsOfIdentity,
  isReady,
  listAccesses,
  loginAndQuery as loginAndQueryAs,
  patchAccess,
  patchServer,
  readAccess as readAccessOf,
  startInProcessController,
  superuserUrl,
  waitForServerReady,
  writeOperatorToken,
} from '../harness/scenario.ts';

const harness = harnessInfo();

const until = poller({ timeoutMs: 30_000, intervalMs: 200 });

/** What a self-migrating app asks for: CONNECT and CREATE on the database, USAGE and CREATE on public. */
const MIGRATION_GRANTS: Grant[] = [
  { target: 'database', privileges: ['CONNECT', 'CREATE'] },
  { target: 'schema', schema: 'public', privileges: ['USAGE', 'CREATE'] },
];

describe.skipIf(!harness)('controller: an app that owns its schema, and spec.ownedObjects', () => {
  const run = uniqueName('owned');
  const namespace = run;
  const subscriptionId = '00000000-0000-0000-0000-00000000c013';
  const resourceGroup = run;
  const database = run.replaceAll('-', '_');
  const serverName = `${run}-pg`;
  const adminRole = harness?.azure.operator.postgresAdminRole ?? '';
  const roles = {
    prefect: `${database}_prefect`,
    late: `${database}_late`,
    keep: `${database}_keep`,
  };
  /** Roles that receive objects: made by the platform team, as the server's Entra admin. */
  const owners = {
    prefect: `${database}_prefect_owner`,
    late: `${database}_late_owner`,
    refused: `${database}_refused_owner`,
  };

  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let emulator: AzureEmulatorClient;
  let controller: ControllerComponent;
  const identities = new Map<string, IdentityView>();
  const identity = (name: string): IdentityView => {
    const found = identities.get(name);
    if (!found) throw new Error(`no identity ${name}`);
    return found;
  };

  /** Runs statements as the superuser; with `asAdmin`, as the operator's Entra admin role (SET ROLE). */
  async function su<R extends pg.QueryResultRow = Record<string, unknown>>(
    sql: string,
    params: unknown[] = [],
    options: { db?: string; asAdmin?: boolean } = {},
  ): Promise<R[]> {
    const client = new pg.Client({ connectionString: superuserUrl(harness!, options.db ?? 'postgres') });
    await client.connect();
    try {
      if (options.asAdmin) await client.query(`SET ROLE "${adminRole}"`);
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  /** A role that may own the app's objects: NOLOGIN, made by the admin, CREATE on public. */
  async function createOwnerRole(role: string): Promise<void> {
    await su(`CREATE ROLE "${role}" NOLOGIN`, [], { asAdmin: true });
    await su(`GRANT USAGE, CREATE ON SCHEMA public TO "${role}"`, [], { db: database, asAdmin: true });
  }

  const roleRow = async (role: string) =>
    (await su<{ rolcanlogin: boolean }>('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [role]))[0];

  /** Every relation (TOAST aside), schema and extension in the app's database owned by `role`, sorted. */
  async function ownedBy(role: string): Promise<string[]> {
    const rows = await su<{ name: string }>(
      `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relowner = $1::regrole AND n.nspname <> 'pg_toast'
       UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = $1::regrole
       UNION ALL SELECT 'extension ' || extname FROM pg_extension WHERE extowner = $1::regrole`,
      [`"${role}"`],
      { db: database },
    );
    return rows.map((row) => row.name).sort();
  }

  /** The admin's memberships in `role`: what it holds before and after a reassignment. */
  const adminMembership = (role: string) =>
    su<{ admin_option: boolean; inherit_option: boolean; set_option: boolean }>(
      `SELECT admin_option, inherit_option, set_option FROM pg_auth_members
        WHERE roleid = $1::regrole AND member = $2::regrole ORDER BY grantor`,
      [`"${role}"`, `"${adminRole}"`],
    );

  const readAccess = (name: string) => readAccessOf(custom, namespace, name);

  const createAccess = (
    name: string,
    options: Omit<AccessOptions, 'serviceAccountName' | 'serverRef' | 'database'>,
  ) =>
    createAccessIn(custom, namespace, name, {
      serviceAccountName: name,
      serverRef: serverName,
      database,
      ...options,
    });

  const patch = (name: string, spec: Partial<EntraDatabaseAccessSpec> | Record<string, unknown>) =>
    patchAccess(custom, namespace, name, spec as Partial<EntraDatabaseAccessSpec>);

  const warnings = async (name: string) =>
    (
      await core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=${name},type=Warning`,
      })
    ).items;

  const appToken = (serviceAccount: string, clientId: string) =>
    appTokenOf(harness!, kc, { namespace, serviceAccount, clientId });
  const loginAndQuery = (role: string, token: string, sql: string) =>
    loginAndQueryAs(harness!, { database, role, token }, sql);

  /** The app's own connection: its role, an Entra token from its workload identity, TLS. */
  async function appClient(role: string, token: string): Promise<pg.Client> {
    const client = new pg.Client({
      host: harness!.postgres.host,
      port: harness!.postgres.port,
      database,
      user: role,
      password: token,
      ssl: { ca: readFileSync(harness!.caFile, 'utf8') },
    });
    await client.connect();
    return client;
  }

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
    await Promise.all(
      ['prefect', 'late', 'keep'].map(async (name) =>
        identities.set(name, await emulator.createIdentity({ subscriptionId, resourceGroup, name })),
      ),
    );
    await createAppDatabase(harness!, database);
    await createOwnerRole(owners.prefect);
    await createOwnerRole(owners.refused);
    await createOptedInNamespace(
      core,
      namespace,
      `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/*`,
    );
    await createDatabaseServer(harness!, kc, {
      name: serverName,
      namespaces: [namespace],
      databases: [database],
      memberOf: [owners.prefect, owners.late],
    });
    controller = await startInProcessController(harness!, kc, {
      tokenFile: await writeOperatorToken(harness!, kc, harness!.dir),
      clusterName: 'harness',
      args: ['--resync-period=30'],
    });
    const server = await waitForServerReady(custom, serverName, 20_000);
    expect(conditionOf(server)?.status).toBe('True');
  });

  afterAll(async () => {
    // Whatever a failed test left: Keep lets every deletion finish.
    const left = custom ? await listAccesses(custom, namespace).catch(() => []) : [];
    for (const access of left ?? []) {
      const name = access.metadata.name ?? '';
      await patch(name, { ownedObjects: { policy: 'Keep', reassignTo: null } }).catch(() => {});
      await deleteAccessAndWait(custom, namespace, name, { timeoutMs: 30_000, missingOk: true }).catch(
        () => {},
      );
    }
    await controller?.stop();
    await core?.deleteNamespace({ name: namespace }).catch(() => {});
    await core
      ?.deleteNamespacedSecret({ namespace: harness!.azure.operator.namespace, name: `${serverName}-ca` })
      .catch(() => {});
    await custom
      ?.deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name: serverName })
      .catch(() => {});
    if (harness) {
      await su(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
      for (const role of [...Object.values(roles), ...Object.values(owners)]) {
        await su(`DROP ROLE IF EXISTS "${role}"`).catch(() => {});
      }
    }
  });

  describe('an app that runs its own migrations, deleted with Reassign', () => {
    const name = 'prefect';
    let token: string;

    it('gets what a migration needs from the API: node-pg-migrate runs as the app', async () => {
      await createAccess(name, {
        identity: identity('prefect').id,
        roleName: roles.prefect,
        grants: MIGRATION_GRANTS,
        ownedObjects: { policy: 'Reassign', reassignTo: owners.prefect },
      });
      const ready = await until(() => readAccess(name), isReady);
      expect(conditionOf(ready), JSON.stringify(ready?.status)).toMatchObject({ status: 'True' });

      token = await appToken(name, identity('prefect').clientId);
      const app = await appClient(roles.prefect, token);
      try {
        const ran = await runner({
          dbClient: app,
          dir: new URL('../support/migrations', import.meta.url).pathname,
          direction: 'up',
          migrationsTable: 'pgmigrations',
          log: () => {},
        });
        expect(ran.map((m) => m.name)).toEqual(['1700000000000_flows', '1700000000001_logs']);
        // The app uses what it made: the extension's function, the defaults, the foreign keys.
        await app.query(`INSERT INTO flow (name) VALUES ('etl'), ('report')`);
        await app.query(
          `INSERT INTO flow_run (flow_id, state) SELECT id, 'COMPLETED' FROM flow;
           INSERT INTO app_logs.log (flow_run_id, message) SELECT id, 'done' FROM flow_run`,
        );
        const counts = await app.query(
          'SELECT (SELECT count(*) FROM flow_run)::int AS runs, (SELECT count(*) FROM app_logs.log)::int AS logs',
        );
        expect(counts.rows).toEqual([{ runs: 2, logs: 2 }]);
        expect((await app.query("SELECT encode(digest('x', 'sha256'), 'hex') AS h")).rows[0].h).toMatch(
          /^[0-9a-f]{64}$/,
        );
      } finally {
        await app.end();
      }
      expect(await ownedBy(roles.prefect)).toEqual(
        [
          'app_logs.log',
          'app_logs.log_id_seq',
          'app_logs.log_pkey',
          'extension pgcrypto',
          'public.flow',
          'public.flow_name_key',
          'public.flow_pkey',
          'public.flow_run',
          'public.flow_run_attempt_seq',
          'public.flow_run_count',
          'public.flow_run_flow_id_state_index',
          'public.flow_run_pkey',
          'public.pgmigrations',
          'public.pgmigrations_id_seq',
          'public.pgmigrations_pkey',
          'schema app_logs',
        ].sort(),
      );
    });

    it('deleting it gives every object to reassignTo, keeps every row, and drops the role', async () => {
      const before = await ownedBy(roles.prefect);
      const membershipBefore = await adminMembership(owners.prefect);
      const fics = await ficsOfIdentity(emulator, identity('prefect').id);
      expect(fics).toHaveLength(1);

      expect(await deleteAccessAndWait(custom, namespace, name, { timeoutMs: 30_000 })).toBeUndefined();

      expect(await roleRow(roles.prefect)).toBeUndefined();
      expect(await ownedBy(owners.prefect)).toEqual(before);
      expect(
        await su<{ flows: number; runs: number; logs: number }>(
          `SELECT (SELECT count(*) FROM flow)::int AS flows, (SELECT count(*) FROM flow_run)::int AS runs,
                  (SELECT count(*) FROM app_logs.log)::int AS logs`,
          [],
          { db: database },
        ),
      ).toEqual([{ flows: 2, runs: 2, logs: 2 }]);
      // The migration history is the new owner's too: a new app under that role would go on from it.
      expect(
        (await su<{ name: string }>('SELECT name FROM pgmigrations ORDER BY id', [], { db: database })).map(
          (r) => r.name,
        ),
      ).toEqual(['1700000000000_flows', '1700000000001_logs']);
      // The admin lent itself the memberships for one transaction only.
      expect(await adminMembership(owners.prefect)).toEqual(membershipBefore);
      // No RoleOwnsObjects: nothing was kept. Azure is cleaned up as usual.
      expect((await warnings(name)).map((e) => e.reason)).not.toContain('RoleOwnsObjects');
      expect(await ficsOfIdentity(emulator, identity('prefect').id)).toEqual([]);
      // A token Entra issued before the deletion logs in as nothing.
      expect(await loginAndQuery(roles.prefect, token, 'SELECT 1')).toMatch(/^ERROR: /);
    });
  });

  it('stops the deletion while the reassignTo role does not exist, and finishes once it does', async () => {
    const name = 'late';
    await createAccess(name, {
      identity: identity('late').id,
      roleName: roles.late,
      grants: MIGRATION_GRANTS,
      ownedObjects: { policy: 'Reassign', reassignTo: owners.late },
    });
    expect(isReady(await until(() => readAccess(name), isReady))).toBe(true);
    const token = await appToken(name, identity('late').clientId);
    expect(
      await loginAndQuery(
        roles.late,
        token,
        `CREATE TABLE late_data (id int); INSERT INTO late_data VALUES (1), (2);
         SELECT count(*)::int AS n FROM late_data`,
      ),
    ).toBe('[{"n":2}]');

    await deleteAccess(custom, namespace, name);
    const stuck = await until(
      () => readAccess(name),
      (a) => conditionOf(a)?.reason === 'ReassignOwnedFailed',
    );
    expect(conditionOf(stuck)?.message).toMatch(
      new RegExp(`^deleting: role "${roles.late}" owns objects and .*"${owners.late}", which does not exist`),
    );
    expect(conditionOf(stuck)?.message).toMatch(/set spec\.ownedObjects\.policy to Keep/);
    // Nothing dropped, nothing given away; the login is gone, the finalizer and the FIC stay.
    expect(await ownedBy(roles.late)).toEqual(['public.late_data']);
    expect(await roleRow(roles.late)).toEqual({ rolcanlogin: false });
    expect(stuck?.metadata.finalizers).toHaveLength(1);
    expect(await ficsOfIdentity(emulator, identity('late').id)).toHaveLength(1);

    // Following the message: the platform team creates the role; the next retry finishes.
    await createOwnerRole(owners.late);
    expect(await deleteAccessAndWait(custom, namespace, name, { timeoutMs: 60_000 })).toBeUndefined();
    expect(await roleRow(roles.late)).toBeUndefined();
    expect(await ownedBy(owners.late)).toEqual(['public.late_data']);
    expect(await su('SELECT id FROM late_data ORDER BY id', [], { db: database })).toEqual([
      { id: 1 },
      { id: 2 },
    ]);
    expect(await ficsOfIdentity(emulator, identity('late').id)).toEqual([]);
  });

  it('refuses a reassignTo the server does not allow, at admission and at deletion; Keep lets it go', async () => {
    const name = 'keep';
    const id = identity('keep');
    const before = { arm: controller.armStats().writes, ddl: ddlCount(harness!) };
    await createAccess(name, {
      identity: id.id,
      roleName: roles.keep,
      grants: MIGRATION_GRANTS,
      ownedObjects: { policy: 'Reassign', reassignTo: owners.refused },
    });
    const refused = await until(
      () => readAccess(name),
      (a) => conditionOf(a)?.reason === 'ReassignTargetNotAllowed',
    );
    expect(conditionOf(refused)?.message).toMatch(
      new RegExp(`reassignTo ${owners.refused} not allowed by EntraDatabaseServer ${serverName}`),
    );
    // An admission refusal writes nothing anywhere.
    expect(controller.armStats().writes).toBe(before.arm);
    expect(ddlCount(harness!)).toBe(before.ddl);
    expect(await roleRow(roles.keep)).toBeUndefined();

    // Allowed for a while: the app makes a table.
    await patchServer(custom, serverName, { allowedMemberOf: [owners.prefect, owners.late, owners.refused] });
    expect(isReady(await until(() => readAccess(name), isReady))).toBe(true);
    const token = await appToken(name, id.clientId);
    expect(
      await loginAndQuery(
        roles.keep,
        token,
        'CREATE TABLE keep_data (id int); INSERT INTO keep_data VALUES (7)',
      ),
    ).toBe('[]');

    // No longer allowed when the access is deleted: checked again, nothing is given away.
    await patchServer(custom, serverName, { allowedMemberOf: [owners.prefect, owners.late] });
    await deleteAccess(custom, namespace, name);
    const stuck = await until(
      () => readAccess(name),
      (a) =>
        conditionOf(a)?.reason === 'ReassignTargetNotAllowed' &&
        Boolean(conditionOf(a)?.message.startsWith('deleting: ')),
    );
    expect(conditionOf(stuck)?.message).toMatch(
      /^deleting: spec\.ownedObjects\.reassignTo .* not allowed .*spec\.ownedObjects\.policy to Keep$/,
    );
    expect(await ownedBy(roles.keep)).toEqual(['public.keep_data']);

    // The way out the message names: policy Keep (reassignTo must go with it).
    await patch(name, { ownedObjects: { policy: 'Keep', reassignTo: null } });
    expect(
      await until(
        () => readAccess(name),
        (a) => a === undefined,
      ),
    ).toBeUndefined();
    expect(await roleRow(roles.keep)).toEqual({ rolcanlogin: false });
    expect(await ownedBy(roles.keep)).toEqual(['public.keep_data']);
    const events = await until(
      () => warnings(name),
      (list) => list.some((e) => e.reason === 'RoleOwnsObjects'),
    );
    expect(events.find((e) => e.reason === 'RoleOwnsObjects')?.message).toMatch(
      /keep_data.*it was kept with NOLOGIN and no data was dropped/,
    );
  });
});
