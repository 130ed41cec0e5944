// The controller's happy path as steps with their assertions, shared by the files that prove it
// under different conditions: controller-happy-path.test.ts (the test's admin credentials) and
// controller-rbac.test.ts (the chart's RBAC only). The orders app reads table orders and may not
// read table secrets; its access resource is "orders-api" in the test's namespace.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'vitest';
import type { EntraDatabaseAccess } from '../../src/api/types.ts';
import type { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import type { HarnessInfo } from '../harness/harness.ts';
import { pollUntil } from '../harness/poll.ts';
import {
  appToken,
  conditionOf,
  createAccess,
  deleteAccessAndWait,
  ficsOf,
  loginAndQuery,
  readAccess,
  readGrants,
  superuserQuery,
} from '../harness/scenario.ts';

/** Run as the Entra admin in the app's database (createAppDatabase). */
export const ORDERS_APP_SQL = `CREATE TABLE orders (id int, item text); INSERT INTO orders VALUES (1, 'book'), (2, 'pen');
  CREATE TABLE secrets (id int); INSERT INTO secrets VALUES (42);`;

const NAME = 'orders-api';

/** Where a run's orders app lives. */
export interface OrdersAppNames {
  namespace: string;
  database: string;
  serverName: string;
  role: string;
}

export function ordersAppNames(run: string): OrdersAppNames {
  const database = run.replaceAll('-', '_');
  return { namespace: run, database, serverName: `${run}-pg`, role: `${database}_app` };
}

export interface HappyPath extends OrdersAppNames {
  info: HarnessInfo;
  /** The admin's: what the test reads and creates with. */
  kubeConfig: k8s.KubeConfig;
  emulator: AzureEmulatorClient;
  app: { id: string; clientId: string };
  /** How long the controller may take for each step. */
  timeoutMs: number;
}

/** Runs `sql` as the orders app, logged in with its own token: rows as JSON, or "ERROR: …". */
export async function ordersAppQuery(path: HappyPath, sql: string): Promise<string> {
  const token = await appToken(path.info, path.kubeConfig, {
    namespace: path.namespace,
    serviceAccount: NAME,
    clientId: path.app.clientId,
  });
  return loginAndQuery(path.info, { database: path.database, role: path.role, token }, sql);
}

/**
 * Creates the orders app's access resource and expects it Ready (Reconciled), its ServiceAccount
 * annotated with the app's client-id, exactly one FIC on the app's identity (for that
 * ServiceAccount), and the app reading orders but not secrets. Returns the access as last read.
 */
export async function expectOrdersAppReady(path: HappyPath): Promise<EntraDatabaseAccess | undefined> {
  const custom = path.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const core = path.kubeConfig.makeApiClient(k8s.CoreV1Api);
  await createAccess(custom, path.namespace, NAME, {
    serviceAccountName: NAME,
    identity: path.app.id,
    serverRef: path.serverName,
    database: path.database,
    roleName: path.role,
    grants: readGrants('orders'),
  });
  const access = await pollUntil(
    () => readAccess(custom, path.namespace, NAME),
    (a) => conditionOf(a)?.status === 'True',
    path.timeoutMs,
    200,
  );
  expect(conditionOf(access), JSON.stringify(access?.status)).toMatchObject({
    status: 'True',
    reason: 'Reconciled',
  });
  const sa = await core.readNamespacedServiceAccount({ namespace: path.namespace, name: NAME });
  expect(sa.metadata?.annotations?.['azure.workload.identity/client-id']).toBe(path.app.clientId);
  const fics = await ficsOf(path.emulator, path.app.id);
  expect(fics.map((f) => f.properties.subject)).toEqual([`system:serviceaccount:${path.namespace}:${NAME}`]);
  expect(await ordersAppQuery(path, 'SELECT item FROM orders ORDER BY id')).toBe(
    '[{"item":"book"},{"item":"pen"}]',
  );
  expect(await ordersAppQuery(path, 'SELECT * FROM secrets')).toMatch(
    /ERROR: permission denied for table secrets/,
  );
  return access;
}

/** Deletes the orders app's access resource and expects it gone, with its FIC and its role. */
export async function expectOrdersAppDeletedCleanly(path: HappyPath): Promise<void> {
  const custom = path.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  expect(
    await deleteAccessAndWait(custom, path.namespace, NAME, { timeoutMs: path.timeoutMs }),
  ).toBeUndefined();
  expect(await ficsOf(path.emulator, path.app.id)).toEqual([]);
  expect(await superuserQuery(path.info, 'SELECT 1 FROM pg_roles WHERE rolname = $1', [path.role])).toEqual(
    [],
  );
}
