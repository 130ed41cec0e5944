// The controller against every real part: an EntraDatabaseServer and an EntraDatabaseAccess in
// the real apiserver become a federated credential on an identity in the Azure emulator (written
// through the real ARM SDK with the operator's workload identity), a ServiceAccount, and an Entra
// PostgreSQL role with grants; then the app logs in with its own token, as a pod would.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_PLURAL, SERVER_PLURAL } from '../../src/api/constants.ts';
import type { EntraDatabaseAccess } from '../../src/api/types.ts';
import type { ControllerComponent } from '../../src/controller/component.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, poller, pollUntil, uniqueName } from '../harness/context.ts';
import { API, mergePatch } from '../harness/kube.ts';
import {
  conditionOf,
  createAccess,
  createAppDatabase,
  createDatabaseServer,
  createOptedInNamespace,
  ddlCount,
  deleteAccess,
  ficsOf,
  patchAccess,
  readAccess as readAccessOf,
  readGrants,
  startInProcessController,
  waitForServerReady,
  writeOperatorToken,
} from '../harness/scenario.ts';
import {
  expectOrdersAppDeletedCleanly,
  expectOrdersAppReady,
  type HappyPath,
  ORDERS_APP_SQL,
  ordersAppNames,
  ordersAppQuery,
} from '../support/controller-happy-path.ts';

const harness = harnessInfo();

const until = poller({ timeoutMs: 60_000, intervalMs: 200 });

describe.skipIf(!harness)(
  'controller: EntraDatabaseAccess to FIC, ServiceAccount and PostgreSQL role',
  () => {
    const run = uniqueName('ctl');
    const names = ordersAppNames(run);
    const { namespace, database, serverName, role } = names;
    const subscriptionId = '00000000-0000-0000-0000-00000000c001';
    const resourceGroup = run;
    let kc: k8s.KubeConfig;
    let core: k8s.CoreV1Api;
    let custom: k8s.CustomObjectsApi;
    let emulator: AzureEmulatorClient;
    let controller: ControllerComponent;
    const metrics = createMetrics();
    /** Reconciles of access resources so far, from the controller's own metric. */
    const accessReconciles = async (): Promise<number> => {
      const metric = await metrics.registry.getSingleMetric('controller_runtime_reconcile_total')?.get();
      return (metric?.values ?? [])
        .filter((v) => v.labels.controller === 'entradatabaseaccess')
        .reduce((sum, v) => sum + v.value, 0);
    };
    let app: { id: string; clientId: string; principalId: string };
    let outsider: { id: string };

    const readAccess = (name: string) => readAccessOf(custom, namespace, name);

    const happyPath = (): HappyPath => ({
      ...names,
      info: harness!,
      kubeConfig: kc,
      emulator,
      app,
      timeoutMs: 60_000,
    });

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
      await createAppDatabase(harness!, database, ORDERS_APP_SQL);
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
        // Short, so the steady-state test sees a resync reconcile within its wait.
        args: ['--resync-period=10'],
        metrics,
      });
    });

    afterAll(async () => {
      await controller?.stop();
      await core?.deleteNamespace({ name: namespace }).catch(() => {});
      await custom
        ?.deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name: serverName })
        .catch(() => {});
    });

    it('makes the server Ready: connected as the Entra admin with a token', async () => {
      const server = await waitForServerReady(custom, serverName);
      expect(conditionOf(server)).toMatchObject({
        status: 'True',
        reason: 'Connected',
      });
      expect(server.status?.serverVersion).toBe(harness!.versions.postgres);
    });

    it('brings an access resource to Ready, and the app logs in with its own token', async () => {
      const access = await expectOrdersAppReady(happyPath());
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
    });

    it('makes no ARM write, runs no DDL and writes no status when nothing changed', async () => {
      const before = { arm: controller.armStats().writes, ddl: ddlCount(harness!) };
      // Positive controls: the counters did see the writes that made the resource Ready.
      expect(before.arm).toBeGreaterThan(0);
      expect(before.ddl).toBeGreaterThan(0);
      // A metadata-only update is filtered out (event-filters.ts, unit-tested); the resync is not.
      const reconcilesBefore = await accessReconciles();
      const touched = (await custom.patchNamespacedCustomObject(
        {
          ...API,
          plural: ACCESS_PLURAL,
          namespace,
          name: 'orders-api',
          body: { metadata: { annotations: { touched: 'yes' } } },
        },
        mergePatch,
      )) as EntraDatabaseAccess;
      // The periodic resync does: wait for at least one, which must find nothing to do.
      const reconcilesAfter = await pollUntil(accessReconciles, (n) => n > reconcilesBefore, 30_000, 250);
      expect(reconcilesAfter).toBeGreaterThan(reconcilesBefore);
      const after = await readAccess('orders-api');
      expect(controller.armStats().writes).toBe(before.arm);
      expect(ddlCount(harness!)).toBe(before.ddl);
      expect(after?.metadata.resourceVersion).toBe(touched.metadata.resourceVersion);
    });

    it('revokes a grant removed from the spec', async () => {
      await patchAccess(custom, namespace, 'orders-api', { grants: readGrants() });
      const result = await until(
        () => ordersAppQuery(happyPath(), 'SELECT item FROM orders'),
        (text) => text.startsWith('ERROR'),
        30_000,
      );
      expect(result).toMatch(/permission denied for table orders/);
    });

    it('refuses an identity outside the namespace allow-list, and writes nothing to Azure', async () => {
      await createAccess(custom, namespace, 'outsider', {
        serviceAccountName: 'outsider',
        identity: outsider.id,
        serverRef: serverName,
        database,
        grants: null,
      });
      const access = await until(
        () => readAccess('outsider'),
        (a) => conditionOf(a)?.status === 'False',
      );
      expect(conditionOf(access)).toMatchObject({ status: 'False', reason: 'IdentityNotAllowed' });
      expect(conditionOf(access)?.message).toContain('entra-access.io/allowed-identities');
      expect(await ficsOf(emulator, outsider.id)).toEqual([]);
      await deleteAccess(custom, namespace, 'outsider');
    });

    it('on deletion removes the FIC and drops the role, then lets the resource go', async () => {
      await expectOrdersAppDeletedCleanly(happyPath());
    });
  },
);
