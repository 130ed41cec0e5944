// The life of an EntraDatabaseAccess against every real part (issue 4's acceptance): each
// admission guard refuses a resource that breaks it and writes nothing to Azure or the database;
// an added memberOf is granted and a changed identity moves the FIC, the ServiceAccount annotation
// and the role; deletion with Orphan leaves everything, and with Delete never drops data.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINALIZER, SERVER_PLURAL } from '../../src/api/constants.ts';
import type { EntraDatabaseAccessSpec } from '../../src/api/types.ts';
import type { ControllerComponent } from '../../src/controller/component.ts';
import { statusOf } from '../../src/kube/client.ts';
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
  deleteAccessAndWait as deleteAccessAndWaitIn,
  ficsOf as ficsOfIdentity,
  isReady,
  listAccesses,
  loginAndQuery as loginAndQueryAs,
  patchAccess as patchAccessIn,
  patchServer,
  readAccess as readAccessOf,
  readGrants,
  startInProcessController,
  superuserUrl,
  waitForServerReady,
  writeOperatorToken,
} from '../harness/scenario.ts';

const harness = harnessInfo();

const until = poller({ timeoutMs: 20_000, intervalMs: 150 });

describe.skipIf(!harness)('controller: guards, updates and deletion of EntraDatabaseAccess', () => {
  const run = uniqueName('life');
  const namespace = run;
  /** Not opted in. */
  const offNamespace = `${run}-off`;
  /** Opted in, but not in the server's allowedNamespaces. */
  const closedNamespace = `${run}-closed`;
  const subscriptionId = '00000000-0000-0000-0000-00000000c002';
  const resourceGroup = run;
  const database = run.replaceAll('-', '_');
  const serverName = `${run}-pg`;
  const adminRole = harness?.azure.operator.postgresAdminRole ?? '';
  const group = `${database}_readers`;
  const roles = {
    base: `${database}_base`,
    upd: `${database}_upd`,
    orphan: `${database}_orphan`,
    owner: `${database}_owner`,
    rename: `${database}_rename`,
    switch: `${database}_switch`,
    switch2: `${database}_switch2`,
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

  const roleRow = async (role: string) =>
    (await su<{ rolcanlogin: boolean }>('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [role]))[0];
  /** The Entra object a role maps to (the harness's pgaadauth stand-in keeps the mapping). */
  const principalOf = async (role: string) =>
    (
      await su<{ object_id: string }>(
        'SELECT object_id FROM pgaadauth_standin.principals p JOIN pg_roles r USING (rolname) WHERE rolname = $1',
        [role],
      )
    )[0]?.object_id;

  const readAccess = (ns: string, name: string) => readAccessOf(custom, ns, name);

  /** An access resource for service account `name` on this file's server and database. */
  const createAccess = (
    ns: string,
    name: string,
    options: Omit<AccessOptions, 'serviceAccountName' | 'serverRef' | 'database'> & Partial<AccessOptions>,
  ) =>
    createAccessIn(custom, ns, name, {
      serviceAccountName: name,
      serverRef: serverName,
      database,
      ...options,
    });

  const patchAccess = (ns: string, name: string, spec: Partial<EntraDatabaseAccessSpec>) =>
    patchAccessIn(custom, ns, name, spec);

  async function deleteAccessAndWait(ns: string, name: string): Promise<void> {
    expect(
      await deleteAccessAndWaitIn(custom, ns, name, { timeoutMs: 20_000, missingOk: true }),
    ).toBeUndefined();
  }

  const ficsOf = (id: string) => ficsOfIdentity(emulator, id);

  const warnings = async (ns: string, name: string) =>
    (
      await core.listNamespacedEvent({
        namespace: ns,
        fieldSelector: `involvedObject.name=${name},type=Warning`,
      })
    ).items;

  const appToken = (ns: string, serviceAccount: string, clientId: string) =>
    appTokenOf(harness!, kc, { namespace: ns, serviceAccount, clientId });
  const loginAndQuery = (role: string, token: string, sql: string) =>
    loginAndQueryAs(harness!, { database, role, token }, sql);

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
    const make = async (name: string, rg = resourceGroup) =>
      identities.set(name, await emulator.createIdentity({ subscriptionId, resourceGroup: rg, name }));
    await Promise.all([
      ...['base', 'upd-a', 'upd-b', 'switch-a', 'switch-b', 'rename', 'orphan', 'owner'].map((name) =>
        make(name),
      ),
      ...['g-ns', 'g-server', 'g-db', 'g-memberof', 'g-reserved', 'g-inuse', 'g-sa'].map((name) =>
        make(name),
      ),
      make('g-outsider', `${run}-other`),
    ]);

    await createAppDatabase(
      harness!,
      database,
      `CREATE TABLE orders (id int, item text); INSERT INTO orders VALUES (1, 'book'), (2, 'pen');
       CREATE TABLE reports (id int); INSERT INTO reports VALUES (7);`,
    );
    const allowedIdentities = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/*`;
    await createOptedInNamespace(core, namespace, allowedIdentities);
    await createOptedInNamespace(core, closedNamespace, allowedIdentities);
    await core.createNamespace({
      body: {
        metadata: {
          name: offNamespace,
          annotations: { 'entra-access.io/allowed-identities': allowedIdentities },
        },
      },
    });
    await createDatabaseServer(harness!, kc, {
      name: serverName,
      namespaces: [namespace, offNamespace],
      databases: [database],
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
    // Let the controller finalize what is left, so the namespaces can go.
    for (const ns of [namespace, closedNamespace, offNamespace]) {
      const left = custom ? await listAccesses(custom, ns).catch(() => []) : [];
      await Promise.all(
        (left ?? []).map((a) => deleteAccessAndWait(ns, a.metadata.name ?? '').catch(() => {})),
      );
    }
    await controller?.stop();
    for (const ns of [namespace, closedNamespace, offNamespace]) {
      await core?.deleteNamespace({ name: ns }).catch(() => {});
    }
    await core
      ?.deleteNamespacedSecret({ namespace: harness!.azure.operator.namespace, name: `${run}-ca` })
      .catch(() => {});
    await custom
      ?.deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name: serverName })
      .catch(() => {});
    if (harness) {
      await su(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
      for (const role of [...Object.values(roles), group]) {
        await su(`DROP ROLE IF EXISTS "${role}"`).catch(() => {});
      }
    }
  });

  describe('guards', () => {
    // The older resource that the RoleNameInUse and ServiceAccountConflict cases collide with.
    beforeAll(async () => {
      await createAccess(namespace, 'base', {
        identity: identity('base').id,
        roleName: roles.base,
        grants: [{ target: 'database', privileges: ['CONNECT'] }],
      });
      const base = await until(() => readAccess(namespace, 'base'), isReady);
      expect(conditionOf(base), JSON.stringify(base?.status)).toMatchObject({ status: 'True' });
    });
    afterAll(() => deleteAccessAndWait(namespace, 'base'));

    interface GuardCase {
      reason: string;
      namespace: string;
      name: string;
      identity: string;
      spec?: Partial<AccessOptions>;
      /** The message says what to change. */
      says: RegExp;
    }
    const cases: GuardCase[] = [
      {
        reason: 'NamespaceNotOptedIn',
        namespace: offNamespace,
        name: 'guard-ns',
        identity: 'g-ns',
        says: /annotate it with entra-access\.io\/workload-identity=enabled/,
      },
      {
        reason: 'IdentityNotAllowed',
        namespace,
        name: 'guard-identity',
        identity: 'g-outsider',
        says: /add it .* to the namespace annotation entra-access\.io\/allowed-identities/,
      },
      {
        reason: 'ServerNotAllowed',
        namespace: closedNamespace,
        name: 'guard-server',
        identity: 'g-server',
        says: /add it to spec\.allowedNamespaces of the server/,
      },
      {
        reason: 'DatabaseNotAllowed',
        namespace,
        name: 'guard-db',
        identity: 'g-db',
        spec: { database: 'not_this_one' },
        says: new RegExp(`use one of \\[${database}\\]`),
      },
      {
        reason: 'MemberOfNotAllowed',
        namespace,
        name: 'guard-memberof',
        identity: 'g-memberof',
        spec: { memberOf: ['azure_pg_admin'] },
        says: /memberOf azure_pg_admin not allowed: it is an administrative role.*remove it from spec\.memberOf/,
      },
      {
        reason: 'RoleNameReserved',
        namespace,
        name: 'guard-reserved',
        identity: 'g-reserved',
        spec: { roleName: adminRole },
        says: /set spec\.roleName to another name/,
      },
      {
        reason: 'RoleNameInUse',
        namespace,
        name: 'guard-inuse',
        identity: 'g-inuse',
        spec: { roleName: roles.base },
        says: new RegExp(`already used by EntraDatabaseAccess ${namespace}/base: set spec\\.roleName`),
      },
      {
        reason: 'ServiceAccountConflict',
        namespace,
        name: 'guard-sa',
        identity: 'g-sa',
        spec: { serviceAccountName: 'base' },
        says: /already bound to identity .* by EntraDatabaseAccess .*\/base: .*use another serviceAccountName/,
      },
    ];

    it.each(cases)('$reason: refused with a message and a Warning, nothing written', async (c) => {
      const id = identity(c.identity);
      const role = c.spec?.roleName ?? `${database}_${c.name.replaceAll('-', '_')}`;
      const before = {
        arm: controller.armStats().writes,
        ddl: ddlCount(harness!),
        principal: await principalOf(role),
      };
      await createAccess(c.namespace, c.name, {
        identity: id.id,
        roleName: role,
        grants: [{ target: 'database', privileges: ['CONNECT'] }],
        ...c.spec,
      });
      const access = await until(
        () => readAccess(c.namespace, c.name),
        (a) => conditionOf(a)?.status === 'False',
      );
      const ready = conditionOf(access);
      expect(ready, JSON.stringify(access?.status)).toMatchObject({ status: 'False', reason: c.reason });
      expect(ready?.message).toMatch(c.says);
      expect(access?.status?.observedGeneration).toBe(access?.metadata.generation);
      const events = await until(
        () => warnings(c.namespace, c.name),
        (list) => list.some((e) => e.reason === c.reason),
      );
      expect(events.find((e) => e.reason === c.reason)?.message).toBe(ready?.message);

      // Nothing written: no ARM write, no FIC, no DDL, no role (or the older owner's role untouched),
      // no ServiceAccount made or re-annotated.
      expect(controller.armStats().writes).toBe(before.arm);
      expect(await ficsOf(id.id)).toEqual([]);
      expect(ddlCount(harness!)).toBe(before.ddl);
      if (c.reason === 'RoleNameInUse') {
        expect(await principalOf(role)).toBe(identity('base').principalId);
      } else if (c.reason === 'RoleNameReserved') {
        expect(await principalOf(role)).toBe(before.principal);
      } else {
        expect(await roleRow(role)).toBeUndefined();
      }
      const serviceAccount = await core
        .readNamespacedServiceAccount({ namespace: c.namespace, name: c.spec?.serviceAccountName ?? c.name })
        .catch(() => undefined);
      if (c.reason === 'ServiceAccountConflict') {
        expect(serviceAccount?.metadata?.annotations?.['azure.workload.identity/client-id']).toBe(
          identity('base').clientId,
        );
      } else {
        expect(serviceAccount).toBeUndefined();
      }

      // The older resource is not disturbed by the later one.
      expect(isReady(await readAccess(namespace, 'base'))).toBe(true);
      await deleteAccessAndWait(c.namespace, c.name);
    });

    it('RoleNameReserved: the schema refuses the other reserved names at apply', async () => {
      const error = await createAccess(namespace, 'guard-pg', {
        identity: identity('g-reserved').id,
        roleName: 'pg_monitor',
        grants: null,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(statusOf(error)).toBe(422);
      expect(String((error as { body?: unknown }).body)).toMatch(/roleName \\?"pg_monitor\\?" is reserved/);
      expect(await readAccess(namespace, 'guard-pg')).toBeUndefined();
    });
  });

  describe('updates', () => {
    const name = 'upd';

    it('grants an added memberOf group role', async () => {
      await createAccess(namespace, name, {
        identity: identity('upd-a').id,
        roleName: roles.upd,
        grants: readGrants(),
      });
      expect(isReady(await until(() => readAccess(namespace, name), isReady))).toBe(true);
      const token = await appToken(namespace, name, identity('upd-a').clientId);
      expect(await loginAndQuery(roles.upd, token, 'SELECT id FROM reports')).toMatch(
        /permission denied for table reports/,
      );

      // A group role made by the Entra admin, the only holder of SELECT on reports.
      await su(`CREATE ROLE ${group} NOLOGIN; GRANT SELECT ON reports TO ${group}`, [], {
        db: database,
        asAdmin: true,
      });
      await patchServer(custom, serverName, { allowedMemberOf: [group] });
      const patched = await patchAccess(namespace, name, { memberOf: [group] });
      const access = await until(
        () => readAccess(namespace, name),
        (a) => isReady(a) && a?.metadata.generation === patched.metadata.generation,
      );
      expect(conditionOf(access), JSON.stringify(access?.status)).toMatchObject({ status: 'True' });
      expect(access?.status?.applied?.memberOf).toEqual([group]);
      const members = await su(
        `SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
          WHERE g.rolname = $1 AND r.rolname = $2`,
        [group, roles.upd],
      );
      expect(members).toHaveLength(1);
      expect(await loginAndQuery(roles.upd, token, 'SELECT id FROM reports')).toBe('[{"id":7}]');
    });

    it('moves the FIC, the ServiceAccount annotation and the role to a changed identity', async () => {
      const a = identity('upd-a');
      const b = identity('upd-b');
      const subject = `system:serviceaccount:${namespace}:${name}`;
      expect((await ficsOf(a.id)).map((f) => f.properties.subject)).toEqual([subject]);
      // A token the old identity got while it still had access.
      const oldToken = await appToken(namespace, name, a.clientId);
      expect(await loginAndQuery(roles.upd, oldToken, 'SELECT 1 AS ok')).toBe('[{"ok":1}]');

      const patched = await patchAccess(namespace, name, { identity: { resourceId: b.id } });
      const access = await until(
        () => readAccess(namespace, name),
        (x) => isReady(x) && x?.status?.observedGeneration === patched.metadata.generation,
      );
      expect(conditionOf(access), JSON.stringify(access?.status)).toMatchObject({ status: 'True' });
      expect(access?.status?.identity).toMatchObject({ clientId: b.clientId, principalId: b.principalId });
      expect(access?.status?.connection?.user).toBe(roles.upd);

      // Azure: the FIC is on the new identity only.
      expect(await ficsOf(a.id)).toEqual([]);
      expect((await ficsOf(b.id)).map((f) => f.properties.subject)).toEqual([subject]);
      // Kubernetes: the ServiceAccount follows.
      const sa = await core.readNamespacedServiceAccount({ namespace, name });
      expect(sa.metadata?.annotations?.['azure.workload.identity/client-id']).toBe(b.clientId);
      // PostgreSQL: the role is the new principal's, with the grants and the membership.
      expect(await principalOf(roles.upd)).toBe(b.principalId);
      const newToken = await appToken(namespace, name, b.clientId);
      expect(await loginAndQuery(roles.upd, newToken, 'SELECT id FROM reports')).toBe('[{"id":7}]');
      // The old identity can neither exchange its service-account token nor log in with a token it had.
      await expect(appToken(namespace, name, a.clientId)).rejects.toThrow();
      expect(await loginAndQuery(roles.upd, oldToken, 'SELECT 1 AS ok')).toMatch(/^ERROR: /);

      await deleteAccessAndWait(namespace, name);
      expect(await ficsOf(b.id)).toEqual([]);
      expect(await roleRow(roles.upd)).toBeUndefined();
    });

    it('keeps the old role and its data when the identity changes and the role owns a table', async () => {
      const a = identity('switch-a');
      const b = identity('switch-b');
      await createAccess(namespace, 'switch', {
        identity: a.id,
        roleName: roles.switch,
        grants: [
          { target: 'database', privileges: ['CONNECT'] },
          { target: 'schema', schema: 'public', privileges: ['USAGE', 'CREATE'] },
        ],
      });
      expect(isReady(await until(() => readAccess(namespace, 'switch'), isReady))).toBe(true);
      const token = await appToken(namespace, 'switch', a.clientId);
      expect(
        await loginAndQuery(
          roles.switch,
          token,
          `CREATE TABLE switch_data (id int); INSERT INTO switch_data VALUES (1), (2), (3);
           SELECT count(*)::int AS n FROM switch_data`,
        ),
      ).toBe('[{"n":3}]');

      await patchAccess(namespace, 'switch', { identity: { resourceId: b.id } });
      const access = await until(
        () => readAccess(namespace, 'switch'),
        (x) => x?.status?.identity?.clientId === b.clientId && conditionOf(x)?.reason === 'RoleConflict',
      );
      // The new identity cannot have the old identity's role; the condition says what to change.
      expect(conditionOf(access)).toMatchObject({ status: 'False', reason: 'RoleConflict' });
      expect(conditionOf(access)?.message).toMatch(/choose another roleName/);
      const events = await until(
        () => warnings(namespace, 'switch'),
        (list) => list.some((e) => e.reason === 'RoleOwnsObjects'),
      );
      expect(events.find((e) => e.reason === 'RoleOwnsObjects')?.message).toMatch(
        new RegExp(`role ${roles.switch} of the previous identity owns objects \\(.*switch_data.*\\)`),
      );
      // The old role is kept for its data, without login, and still the old identity's.
      expect(await roleRow(roles.switch)).toEqual({ rolcanlogin: false });
      expect(await principalOf(roles.switch)).toBe(a.principalId);
      expect(await su('SELECT count(*)::int AS n FROM switch_data', [], { db: database })).toEqual([
        { n: 3 },
      ]);
      expect(await loginAndQuery(roles.switch, token, 'SELECT 1')).toMatch(/not permitted to log in/);
      // Azure moved on anyway: the FIC is on the new identity only.
      expect(await ficsOf(a.id)).toEqual([]);
      expect(await ficsOf(b.id)).toHaveLength(1);

      // Following the message: another role name, and the new identity is Ready.
      const patched = await patchAccess(namespace, 'switch', { roleName: roles.switch2 });
      expect(
        isReady(
          await until(
            () => readAccess(namespace, 'switch'),
            (x) => isReady(x) && x?.status?.observedGeneration === patched.metadata.generation,
          ),
        ),
      ).toBe(true);
      expect(await principalOf(roles.switch2)).toBe(b.principalId);
      await deleteAccessAndWait(namespace, 'switch');
      expect(await roleRow(roles.switch2)).toBeUndefined();
    });

    it('moves the FIC to a changed service account and leaves none for the old one', async () => {
      const id = identity('rename');
      await createAccess(namespace, 'rename', {
        identity: id.id,
        roleName: roles.rename,
        grants: [{ target: 'database', privileges: ['CONNECT'] }],
      });
      expect(isReady(await until(() => readAccess(namespace, 'rename'), isReady))).toBe(true);
      const patched = await patchAccess(namespace, 'rename', { serviceAccountName: 'renamed' });
      const access = await until(
        () => readAccess(namespace, 'rename'),
        (x) => isReady(x) && x?.status?.observedGeneration === patched.metadata.generation,
      );
      expect(conditionOf(access), JSON.stringify(access?.status)).toMatchObject({ status: 'True' });
      expect((await ficsOf(id.id)).map((f) => [f.name, f.properties.subject])).toEqual([
        [access?.status?.federatedCredential?.name, `system:serviceaccount:${namespace}:renamed`],
      ]);
      const token = await appToken(namespace, 'renamed', id.clientId);
      expect(await loginAndQuery(roles.rename, token, 'SELECT 1 AS ok')).toBe('[{"ok":1}]');
      await expect(appToken(namespace, 'rename', id.clientId)).rejects.toThrow();

      await deleteAccessAndWait(namespace, 'rename');
      expect(await ficsOf(id.id)).toEqual([]);
    });
  });

  describe('deletion', () => {
    it('with Orphan leaves the FIC, the role and its grants', async () => {
      const id = identity('orphan');
      await createAccess(namespace, 'orphan', {
        identity: id.id,
        roleName: roles.orphan,
        deletionPolicy: 'Orphan',
        grants: readGrants('orders'),
      });
      const ready = await until(() => readAccess(namespace, 'orphan'), isReady);
      expect(isReady(ready)).toBe(true);
      expect(ready?.metadata.finalizers).toEqual([FINALIZER]);
      const ficsBefore = await ficsOf(id.id);
      expect(ficsBefore).toHaveLength(1);

      await deleteAccessAndWait(namespace, 'orphan');
      expect(await ficsOf(id.id)).toEqual(ficsBefore);
      expect(await roleRow(roles.orphan)).toEqual({ rolcanlogin: true });
      // The app still exchanges its token, logs in and reads what it was granted.
      const token = await appToken(namespace, 'orphan', id.clientId);
      expect(await loginAndQuery(roles.orphan, token, 'SELECT item FROM orders ORDER BY id')).toBe(
        '[{"item":"book"},{"item":"pen"}]',
      );
    });

    it('with Delete keeps a role that owns a table, without login, and keeps the data', async () => {
      const id = identity('owner');
      await createAccess(namespace, 'owner', {
        identity: id.id,
        roleName: roles.owner,
        deletionPolicy: 'Delete',
        grants: [
          { target: 'database', privileges: ['CONNECT'] },
          { target: 'schema', schema: 'public', privileges: ['USAGE', 'CREATE'] },
        ],
      });
      expect(isReady(await until(() => readAccess(namespace, 'owner'), isReady))).toBe(true);
      const token = await appToken(namespace, 'owner', id.clientId);
      expect(
        await loginAndQuery(
          roles.owner,
          token,
          `CREATE TABLE owner_data (id int, note text);
           INSERT INTO owner_data VALUES (1, 'kept'), (2, 'also kept');
           SELECT count(*)::int AS n FROM owner_data`,
        ),
      ).toBe('[{"n":2}]');

      await deleteAccessAndWait(namespace, 'owner');
      const events = await until(
        () => warnings(namespace, 'owner'),
        (list) => list.some((e) => e.reason === 'RoleOwnsObjects'),
      );
      expect(events.find((e) => e.reason === 'RoleOwnsObjects')?.message).toMatch(
        new RegExp(`role ${roles.owner} owns objects \\(.*owner_data.*\\); it was kept with NOLOGIN`),
      );
      expect(await roleRow(roles.owner)).toEqual({ rolcanlogin: false });
      expect(await ficsOf(id.id)).toEqual([]);
      // A token Entra issued before the deletion no longer logs in: the role has no login.
      expect(await loginAndQuery(roles.owner, token, 'SELECT 1')).toMatch(/not permitted to log in/);
      // The table and its rows are intact, and still the role's.
      expect(await su('SELECT id, note FROM owner_data ORDER BY id', [], { db: database })).toEqual([
        { id: 1, note: 'kept' },
        { id: 2, note: 'also kept' },
      ]);
      expect(
        await su("SELECT tableowner FROM pg_tables WHERE tablename = 'owner_data'", [], { db: database }),
      ).toEqual([{ tableowner: roles.owner }]);
      // The grants this resource made were revoked.
      expect(
        await su('SELECT has_schema_privilege($1, $2, $3) AS create', [roles.owner, 'public', 'CREATE'], {
          db: database,
        }),
      ).toEqual([{ create: false }]);
    });
  });
});
