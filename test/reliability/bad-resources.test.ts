// Issue 8, bad input: EntraDatabaseAccess resources the schema admits but that cannot work, which
// the controller (a real `entra-access run --controller` process) must refuse with a condition
// that names the problem, writing nothing it would leave behind. The schema's own rejections are in
// test/integration/crds.test.ts, and the admission guards (NamespaceNotOptedIn, IdentityNotAllowed,
// ServerNotAllowed, DatabaseNotAllowed, MemberOfNotAllowed, RoleNameReserved, RoleNameInUse,
// ServiceAccountConflict) in controller-lifecycle.test.ts; this file covers what neither does:
// things only Azure, the server or the database can tell.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_PLURAL } from '../../src/api/constants.ts';
import type { EntraDatabaseAccess, Grant } from '../../src/api/types.ts';
import { AzureEmulatorClient, type IdentityView } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { freePort } from '../harness/ports.ts';
import { type ManagedProcess, makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  API,
  createAccess,
  createAppDatabase,
  createDatabaseServer,
  createOptedInNamespace,
  deleteAccessAndWait,
  deleteAccessesAndWait,
  ficsOf,
  isReady,
  patchServer,
  readAccess,
  rolesOfPrincipal,
  startControllerProcess,
  superuserQuery,
} from '../harness/scenario.ts';

const harness = harnessInfo();
const SUBSCRIPTION = '00000000-0000-0000-0000-0000000bad00';

interface BadCase {
  name: string;
  /** What is wrong, for the test title. */
  what: string;
  spec: { serverRef?: string; database?: string; memberOf?: string[]; grants?: Grant[]; identity?: string };
  /** The reason some condition must carry (Ready is False). */
  reason: string;
  /** The message says what is wrong. */
  says: RegExp;
  /** Whether the identity exists (so a FIC and a role could have been made). */
  identityExists?: boolean;
}

describe.skipIf(!harness)(
  'bad access resources the schema admits are refused by the controller with a condition',
  () => {
    const run = uniqueName('badres');
    const suffix = run.slice('badres-'.length);
    const namespace = run;
    const database = `badres_${suffix}`;
    const missingDatabase = `nodb_${suffix}`;
    const server = run;
    const brokenServer = `${run}-broken`;
    const resourceGroup = `rg-${run}`;
    const groupOk = `grp_ok_${suffix}`;
    const groupMissing = `grp_missing_${suffix}`;
    const groupNoAdmin = `grp_noadmin_${suffix}`;
    let kc: k8s.KubeConfig;
    let core: k8s.CoreV1Api;
    let custom: k8s.CustomObjectsApi;
    let emulator: AzureEmulatorClient;
    let dir: string;
    let controller: ManagedProcess;
    const identities = new Map<string, IdentityView>();

    const identityId = (name: string) =>
      `/subscriptions/${SUBSCRIPTION}/resourceGroups/${resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;

    beforeAll(async () => {
      const info = harness!;
      kc = adminKubeConfig(info);
      core = kc.makeApiClient(k8s.CoreV1Api);
      custom = kc.makeApiClient(k8s.CustomObjectsApi);
      emulator = new AzureEmulatorClient(info.azure.url, { ca: readFileSync(info.caFile) });
      dir = makeTempDir('bad-resources');
      await createOptedInNamespace(
        core,
        namespace,
        `/subscriptions/${SUBSCRIPTION}/resourceGroups/${resourceGroup}/*`,
      );
      await createAppDatabase(info, database, 'CREATE TABLE public.t (id int)');
      const admin = info.azure.operator.postgresAdminRole;
      // A group the admin made (it may grant it) and one the superuser made (it may not).
      await superuserQuery(info, `SET ROLE "${admin}"; CREATE ROLE "${groupOk}" NOLOGIN`);
      await superuserQuery(info, `CREATE ROLE "${groupNoAdmin}" NOLOGIN`);
      await createDatabaseServer(info, kc, {
        name: server,
        namespaces: [namespace],
        databases: [database, missingDatabase],
        memberOf: [groupOk, groupMissing, groupNoAdmin],
      });
      // A server that allows the namespace but cannot be reached: nothing listens on its port.
      await createDatabaseServer(info, kc, {
        name: brokenServer,
        namespaces: [namespace],
        databases: [database],
      });
      const closedPort = await freePort();
      await patchServer(custom, brokenServer, { port: closedPort });
      controller = await startControllerProcess(info, kc, { dir, clusterName: run });
    });

    afterAll(async () => {
      const info = harness!;
      await deleteAccessesAndWait(custom, namespace);
      await controller?.stop();
      for (const name of [server, brokenServer]) {
        await custom.deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name }).catch(() => {});
      }
      await core.deleteNamespace({ name: namespace }).catch(() => {});
      await superuserQuery(info, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`).catch(() => {});
      for (const identity of identities.values()) {
        for (const role of await rolesOfPrincipal(info, identity.principalId).catch(() => [])) {
          await superuserQuery(info, `DROP ROLE IF EXISTS "${role}"`).catch(() => {});
        }
      }
      for (const role of [groupOk, groupNoAdmin]) {
        await superuserQuery(info, `DROP ROLE IF EXISTS "${role}"`).catch(() => {});
      }
      if (dir) removeTempDir(dir);
    });

    async function identityFor(name: string): Promise<IdentityView> {
      const made = await emulator.createIdentity({
        subscriptionId: SUBSCRIPTION,
        resourceGroup,
        name: `id-${name}`,
      });
      identities.set(name, made);
      return made;
    }

    async function createCase(c: BadCase): Promise<string> {
      const resourceId =
        c.identityExists === false ? identityId(`absent-${suffix}`) : (await identityFor(c.name)).id;
      await createAccess(custom, namespace, c.name, {
        serviceAccountName: c.name,
        identity: resourceId,
        serverRef: c.spec.serverRef ?? server,
        database: c.spec.database ?? database,
        roleName: `${c.name.replaceAll('-', '_')}_${suffix}`,
        ...(c.spec.memberOf ? { memberOf: c.spec.memberOf } : {}),
        grants: c.spec.grants ?? [{ target: 'database', privileges: ['CONNECT'] }],
      });
      return resourceId;
    }

    /** The first False condition other than Ready, and Ready itself. */
    const failure = (access: EntraDatabaseAccess | undefined) => ({
      ready: access?.status?.conditions?.find((c) => c.type === 'Ready'),
      cause: access?.status?.conditions?.find((c) => c.type !== 'Ready' && c.status === 'False'),
    });

    async function expectRefused(c: BadCase): Promise<EntraDatabaseAccess | undefined> {
      const access = await pollUntil(
        () => readAccess(custom, namespace, c.name),
        (a) =>
          a?.status?.observedGeneration === a?.metadata.generation &&
          (a?.status?.conditions ?? []).some((x) => x.reason === c.reason),
        45_000,
        250,
      );
      const { ready } = failure(access);
      // The step that failed carries the reason (for an admission check, Ready itself does).
      const cause = access?.status?.conditions?.find((x) => x.status === 'False' && x.reason === c.reason);
      const seen = JSON.stringify(access?.status?.conditions, null, 1);
      expect(ready?.status, seen).toBe('False');
      expect(isReady(access), seen).toBe(false);
      expect(cause?.reason, seen).toBe(c.reason);
      expect(cause?.message, seen).toMatch(c.says);
      return access;
    }

    /** Deleting the resource leaves no role for its identity and no FIC on it. */
    async function expectCleanDeletion(c: BadCase): Promise<void> {
      const gone = await deleteAccessAndWait(custom, namespace, c.name, { timeoutMs: 45_000 });
      expect(gone, JSON.stringify(gone?.status)).toBeUndefined();
      const identity = identities.get(c.name);
      if (identity) {
        expect(await rolesOfPrincipal(harness!, identity.principalId), `roles left for ${c.name}`).toEqual(
          [],
        );
        expect(await ficsOf(emulator, identity.id), `FICs left for ${c.name}`).toEqual([]);
      }
    }

    const cases: BadCase[] = [
      {
        name: 'no-identity',
        what: 'an identity resource ID that passes the pattern and the allow-list but does not exist',
        spec: {},
        identityExists: false,
        reason: 'IdentityNotFound',
        says: new RegExp(`absent-${suffix}`, 'i'),
      },
      {
        name: 'no-server',
        what: 'a serverRef naming no EntraDatabaseServer',
        spec: { serverRef: `no-such-server-${suffix}` },
        reason: 'ServerNotFound',
        says: /does not exist: fix spec\.serverRef/,
      },
      {
        name: 'server-down',
        what: 'a server that allows the namespace but is not Ready',
        spec: { serverRef: brokenServer },
        reason: 'ServerNotReady',
        says: new RegExp(`${brokenServer} is not Ready`),
      },
      {
        name: 'no-database',
        what: 'an allowed database that does not exist on the server',
        spec: { database: missingDatabase },
        reason: 'DatabaseRequestFailed',
        says: new RegExp(`database "${missingDatabase}" does not exist`),
      },
      {
        name: 'group-no-admin',
        what: 'an allowed memberOf group the admin role may not grant',
        spec: { memberOf: [groupNoAdmin] },
        reason: 'GrantNotPermitted',
        says: new RegExp(`permission denied to grant role "${groupNoAdmin}"`),
      },
    ];

    it.each(cases)('$name: $what → $reason', async (c) => {
      await createCase(c);
      await expectRefused(c);
    });

    it('a ServiceAccount carrying another client-id set by hand → ServiceAccountClientIdConflict, left as set', async () => {
      const c: BadCase = {
        name: 'sa-conflict',
        what: '',
        spec: {},
        reason: 'ServiceAccountClientIdConflict',
        says: /someone-elses-client-id/,
      };
      await core.createNamespacedServiceAccount({
        namespace,
        body: {
          metadata: {
            name: c.name,
            annotations: { 'azure.workload.identity/client-id': 'someone-elses-client-id' },
          },
        },
      });
      await createCase(c);
      await expectRefused(c);
      const sa = await core.readNamespacedServiceAccount({ namespace, name: c.name });
      expect(sa.metadata?.annotations?.['azure.workload.identity/client-id']).toBe('someone-elses-client-id');
    });

    // What the database cannot grant because the object is not there: the resource must not claim
    // to be Ready with grants it does not have.
    const missingObjects: BadCase[] = [
      {
        name: 'no-schema',
        what: 'a grant on a schema that does not exist',
        spec: { grants: [{ target: 'schema', schema: `nosuch_${suffix}`, privileges: ['USAGE'] }] },
        reason: 'GrantTargetNotFound',
        says: new RegExp(
          `schema "nosuch_${suffix}" does not exist.*create schema "nosuch_${suffix}".*or remove it from spec\\.grants`,
        ),
      },
      {
        name: 'no-table',
        what: 'a grant on a table that does not exist',
        spec: {
          grants: [
            { target: 'tables', schema: 'public', tables: [`nosuch_${suffix}`], privileges: ['SELECT'] },
          ],
        },
        reason: 'GrantTargetNotFound',
        says: new RegExp(`nosuch_${suffix}.* does not exist.*or remove it from spec\\.grants`),
      },
      {
        name: 'no-group',
        what: 'an allowed memberOf group role that does not exist',
        spec: { memberOf: [groupMissing] },
        reason: 'GrantTargetNotFound',
        says: new RegExp(`${groupMissing}" does not exist.*or remove it from spec\\.memberOf`),
      },
    ];

    // planGrants() returns the objects it could not find in `missing`; the controller reports them
    // as DatabaseRoleReady=False GrantTargetNotFound (it used to go Ready with nothing granted).
    for (const c of missingObjects) {
      it(`${c.name}: ${c.what} is reported, not Ready`, async () => {
        await createCase(c);
        const access = await pollUntil(
          () => readAccess(custom, namespace, c.name),
          (a) =>
            a?.status?.observedGeneration === a?.metadata.generation &&
            (a?.status?.conditions ?? []).some(
              (x) => x.type === 'DatabaseRoleReady' && x.status !== 'Unknown',
            ),
          45_000,
          250,
        );
        const seen = JSON.stringify(access?.status?.conditions, null, 1);
        const conditions = access?.status?.conditions ?? [];
        // Some condition names the missing object, and the resource is not Ready.
        expect(
          conditions.some((x) => c.says.test(x.message ?? '')),
          seen,
        ).toBe(true);
        expect(isReady(access), seen).toBe(false);
        const role = conditions.find((x) => x.type === 'DatabaseRoleReady');
        expect(role?.status, seen).toBe('False');
        expect(role?.reason, seen).toBe(c.reason);
      });
    }

    // A reconcile that creates the role (pgaadauth_create_principal_with_oid) and then fails (the
    // database does not exist, a group cannot be granted) records the role in status.applied at
    // once, so deletion with deletionPolicy Delete drops it (no-database, group-no-admin: it used
    // to leave a LOGIN role mapped to the identity).
    for (const c of [
      ...cases.filter((x) => x.identityExists !== false),
      { name: 'sa-conflict' } as BadCase,
      ...missingObjects,
    ]) {
      it(`${c.name}: deleting it leaves no role and no FIC behind`, async () => {
        await expectCleanDeletion(c);
      });
    }
  },
);
