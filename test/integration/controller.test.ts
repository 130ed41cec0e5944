// The controller against every real part: an EntraDatabaseServer and an EntraDatabaseAccess in
// the real apiserver become a federated credential on an identity in the Azure emulator (written
// through the real ARM SDK with the operator's workload identity), a ServiceAccount, and an Entra
// PostgreSQL role with grants; then the app logs in with its own token, as a pod would.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_PLURAL, GROUP, SERVER_PLURAL, VERSION } from '../../src/api/constants.ts';
import type { EntraDatabaseAccess, EntraDatabaseServer } from '../../src/api/types.ts';
import type { ControllerComponent } from '../../src/controller/component.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import {
  appToken,
  createAccess,
  createAppDatabase,
  createDatabaseServer,
  createOptedInNamespace,
  ddlCount,
  loginAndQuery,
  readAccess as readAccessOf,
  startInProcessController,
  superuserQuery,
  writeOperatorToken,
} from '../harness/scenario.ts';

const harness = harnessInfo();
const api = { group: GROUP, version: VERSION };
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

const until = <T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 60_000): Promise<T> =>
  pollUntil(read, ok, timeoutMs, 200);

const readyOf = (access: EntraDatabaseAccess | undefined) =>
  access?.status?.conditions?.find((c) => c.type === 'Ready');

describe.skipIf(!harness)(
  'controller: EntraDatabaseAccess to FIC, ServiceAccount and PostgreSQL role',
  () => {
    const run = uniqueName('ctl');
    const namespace = run;
    const subscriptionId = '00000000-0000-0000-0000-00000000c001';
    const resourceGroup = run;
    const database = run.replaceAll('-', '_');
    const serverName = `${run}-pg`;
    const role = `${database}_app`;
    let kc: k8s.KubeConfig;
    let core: k8s.CoreV1Api;
    let custom: k8s.CustomObjectsApi;
    let emulator: AzureEmulatorClient;
    let controller: ControllerComponent;
    let app: { id: string; clientId: string; principalId: string };
    let outsider: { id: string };

    const readAccess = (name: string) => readAccessOf(custom, namespace, name);

    async function appQuery(sql: string): Promise<string> {
      const token = await appToken(harness!, kc, {
        namespace,
        serviceAccount: 'orders-api',
        clientId: app.clientId,
      });
      return loginAndQuery(harness!, { database, role, token }, sql);
    }

    beforeAll(async () => {
      kc = adminKubeConfig(harness!);
      core = kc.makeApiClient(k8s.CoreV1Api);
      custom = kc.makeApiClient(k8s.CustomObjectsApi);
      emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
      app = await emulator.createIdentity({ subscriptionId, resourceGroup, name: 'orders-api' });
      outsider = await emulator.createIdentity({
        subscriptionId,
        resourceGroup: `${run}-other`,
        name: 'outsider',
      });
      await createAppDatabase(
        harness!,
        database,
        `CREATE TABLE orders (id int, item text); INSERT INTO orders VALUES (1, 'book'), (2, 'pen');
         CREATE TABLE secrets (id int); INSERT INTO secrets VALUES (42);`,
      );
      await createOptedInNamespace(
        core,
        namespace,
        `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/*`,
      );
      await createDatabaseServer(harness!, kc, {
        name: serverName,
        namespaces: [namespace],
        databases: [database],
      });
      controller = await startInProcessController(harness!, kc, {
        tokenFile: await writeOperatorToken(harness!, kc, harness!.dir),
        clusterName: 'harness',
        args: ['--resync-period=30'],
      });
    });

    afterAll(async () => {
      await controller?.stop();
      await core?.deleteNamespace({ name: namespace }).catch(() => {});
      await custom
        ?.deleteClusterCustomObject({ ...api, plural: SERVER_PLURAL, name: serverName })
        .catch(() => {});
    });

    it('makes the server Ready: connected as the Entra admin with a token', async () => {
      const server = await until(
        () =>
          custom.getClusterCustomObject({
            ...api,
            plural: SERVER_PLURAL,
            name: serverName,
          }) as Promise<EntraDatabaseServer>,
        (s) => s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      );
      expect(server.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'True',
        reason: 'Connected',
      });
      expect(server.status?.serverVersion).toBe(harness!.versions.postgres);
    });

    it('brings an access resource to Ready, and the app logs in with its own token', async () => {
      await createAccess(custom, namespace, 'orders-api', {
        serviceAccountName: 'orders-api',
        identity: app.id,
        serverRef: serverName,
        database,
        roleName: role,
        grants: [
          { on: 'database', privileges: ['CONNECT'] },
          { on: 'schema', schema: 'public', privileges: ['USAGE'] },
          { on: 'tables', schema: 'public', tables: ['orders'], privileges: ['SELECT'] },
        ],
      });
      const access = await until(
        () => readAccess('orders-api'),
        (a) => readyOf(a)?.status === 'True',
      );
      expect(readyOf(access), JSON.stringify(access?.status)).toMatchObject({
        status: 'True',
        reason: 'Reconciled',
      });
      expect(access?.metadata.finalizers).toContain('entra-access.io/cleanup');
      expect(access?.status?.identity).toMatchObject({
        clientId: app.clientId,
        principalId: app.principalId,
      });
      expect(access?.status?.federatedCredential).toMatchObject({
        issuer: harness!.kubernetes.issuer,
        subject: `system:serviceaccount:${namespace}:orders-api`,
      });
      expect(access?.status?.connection).toMatchObject({
        host: 'localhost',
        database,
        user: role,
        sslMode: 'verify-full',
      });

      const sa = await core.readNamespacedServiceAccount({ namespace, name: 'orders-api' });
      expect(sa.metadata?.annotations?.['azure.workload.identity/client-id']).toBe(app.clientId);
      const fics = (await emulator.listIdentities()).find(
        (i) => i.clientId === app.clientId,
      )?.federatedIdentityCredentials;
      expect(fics?.map((f) => f.properties.subject)).toEqual([
        `system:serviceaccount:${namespace}:orders-api`,
      ]);

      expect(await appQuery('SELECT item FROM orders ORDER BY id')).toBe('[{"item":"book"},{"item":"pen"}]');
      expect(await appQuery('SELECT * FROM secrets')).toMatch(/ERROR: permission denied for table secrets/);
    });

    it('makes no ARM write, runs no DDL and writes no status when nothing changed', async () => {
      const before = { arm: controller.armStats().writes, ddl: ddlCount(harness!) };
      // Positive controls: the counters did see the writes that made the resource Ready.
      expect(before.arm).toBeGreaterThan(0);
      expect(before.ddl).toBeGreaterThan(0);
      // Any update event makes the controller reconcile; an annotation does not change the spec.
      const touched = (await custom.patchNamespacedCustomObject(
        {
          ...api,
          plural: ACCESS_PLURAL,
          namespace,
          name: 'orders-api',
          body: { metadata: { annotations: { touched: 'yes' } } },
        },
        mergePatch,
      )) as EntraDatabaseAccess;
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const after = await readAccess('orders-api');
      expect(controller.armStats().writes).toBe(before.arm);
      expect(ddlCount(harness!)).toBe(before.ddl);
      expect(after?.metadata.resourceVersion).toBe(touched.metadata.resourceVersion);
    });

    it('revokes a grant removed from the spec', async () => {
      await custom.patchNamespacedCustomObject(
        {
          ...api,
          plural: ACCESS_PLURAL,
          namespace,
          name: 'orders-api',
          body: {
            spec: {
              grants: [
                { on: 'database', privileges: ['CONNECT'] },
                { on: 'schema', schema: 'public', privileges: ['USAGE'] },
              ],
            },
          },
        },
        mergePatch,
      );
      const result = await until(
        () => appQuery('SELECT item FROM orders'),
        (text) => text.startsWith('ERROR'),
        30_000,
      );
      expect(result).toMatch(/permission denied for table orders/);
    });

    it('refuses an identity outside the namespace allow-list, and writes nothing to Azure', async () => {
      await custom.createNamespacedCustomObject({
        ...api,
        plural: ACCESS_PLURAL,
        namespace,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'EntraDatabaseAccess',
          metadata: { name: 'outsider' },
          spec: {
            serviceAccountName: 'outsider',
            identity: { resourceId: outsider.id },
            serverRef: serverName,
            database,
          },
        },
      });
      const access = await until(
        () => readAccess('outsider'),
        (a) => readyOf(a)?.status === 'False',
      );
      expect(readyOf(access)).toMatchObject({ status: 'False', reason: 'IdentityNotAllowed' });
      expect(readyOf(access)?.message).toContain('entra-access.io/allowed-identities');
      const fics = (await emulator.listIdentities()).find(
        (i) => i.id === outsider.id,
      )?.federatedIdentityCredentials;
      expect(fics).toEqual([]);
      await custom.deleteNamespacedCustomObject({
        ...api,
        plural: ACCESS_PLURAL,
        namespace,
        name: 'outsider',
      });
    });

    it('on deletion removes the FIC and drops the role, then lets the resource go', async () => {
      await custom.deleteNamespacedCustomObject({
        ...api,
        plural: ACCESS_PLURAL,
        namespace,
        name: 'orders-api',
      });
      const gone = await until(
        () => readAccess('orders-api'),
        (a) => a === undefined,
      );
      expect(gone).toBeUndefined();
      const fics = (await emulator.listIdentities()).find(
        (i) => i.clientId === app.clientId,
      )?.federatedIdentityCredentials;
      expect(fics).toEqual([]);
      expect(await superuserQuery(harness!, 'SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).toEqual([]);
    });
  },
);
