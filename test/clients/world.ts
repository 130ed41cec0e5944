// The one app every client test logs in as, built as the demo builds it (hack/demo): entra-access
// running with its webhook registered in the apiserver (inject mode), an opted-in namespace, the
// app's managed identity, a database with a granted table (orders, 3 rows) and an ungranted one
// (payments), an EntraDatabaseServer, the ServiceAccount and EntraDatabaseAccess, and a pod
// admitted through the apiserver with docs/aks-guide.md's PG* variables. Plain data out, so it
// crosses into the test workers.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { startOperator } from '../../hack/demo/operator.ts';
import { createAppPod } from '../../hack/demo/pod.ts';
import { waitFor } from '../../hack/demo/report.ts';
import {
  createAppDatabaseWithData,
  createNamespace,
  createOrdersAccess,
  createServer,
  createServiceAccount,
  DEMO,
  readServer,
} from '../../hack/demo/tenant.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import type { HarnessInfo } from '../harness/harness.ts';
import { isReady, readAccess } from '../harness/scenario.ts';

export interface ClientWorld {
  namespace: string;
  pod: string;
  grantedTable: string;
  /** Rows in the granted table. */
  grantedRows: number;
  ungrantedTable: string;
  /** The app's role, status.connection.user. */
  user: string;
  /** The identity's principal ID: the oid of the app's Entra tokens. */
  principalId: string;
}

export interface RunningWorld {
  world: ClientWorld;
  stop(): Promise<void>;
}

export async function startClientWorld(info: HarnessInfo): Promise<RunningWorld> {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(info.kubernetes.kubeconfigPath);
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const emulator = new AzureEmulatorClient(info.azure.url, { ca: readFileSync(info.caFile) });

  const operator = await startOperator(info, kubeConfig);
  const stop = async () => {
    await operator.process.stop();
    await kubeConfig
      .makeApiClient(k8s.AdmissionregistrationV1Api)
      .deleteMutatingWebhookConfiguration({ name: operator.configurationName })
      .catch(() => {});
  };
  try {
    await createNamespace(core);
    const identity = await emulator.createIdentity({
      subscriptionId: DEMO.subscriptionId,
      resourceGroup: DEMO.resourceGroup,
      name: DEMO.identityName,
    });
    await createAppDatabaseWithData(info);
    await createServer(info, kubeConfig);
    await waitFor(
      () => readServer(custom),
      (s) => s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      (s) => `EntraDatabaseServer not Ready: ${JSON.stringify(s.status?.conditions ?? [])}`,
    );
    await createServiceAccount(core);
    await createOrdersAccess(custom, identity);
    const access = await waitFor(
      () => readAccess(custom, DEMO.namespace, DEMO.access),
      isReady,
      (a) => `EntraDatabaseAccess not Ready: ${JSON.stringify(a?.status?.conditions ?? [])}`,
    );
    const connection = access?.status?.connection ?? {};
    const pod = await createAppPod(core, connection);
    return {
      world: {
        namespace: DEMO.namespace,
        pod: pod.metadata?.name ?? '',
        grantedTable: DEMO.grantedTable,
        grantedRows: 3,
        ungrantedTable: DEMO.ungrantedTable,
        user: connection.user ?? '',
        principalId: identity.principalId,
      },
      stop,
    };
  } catch (error) {
    const tail = operator.process.tail();
    await stop();
    throw new Error(`${(error as Error).message}\noperator log:\n${tail}`);
  }
}
