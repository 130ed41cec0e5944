// What the platform team and the app team each declare in the demo: the app's managed identity
// and database (Azure's side), an opted-in namespace allowed that identity, an
// EntraDatabaseServer, and the app's ServiceAccount and EntraDatabaseAccess.
import type * as k8s from '@kubernetes/client-node';
import { SERVER_PLURAL } from '../../src/api/constants.ts';
import type { EntraDatabaseAccess, EntraDatabaseServer } from '../../src/api/types.ts';
import type { IdentityView } from '../../test/harness/azure-emulator/client.ts';
import type { HarnessInfo } from '../../test/harness/harness.ts';
import {
  API,
  createAccess,
  createAppDatabase,
  createDatabaseServer,
  createOptedInNamespace,
} from '../../test/harness/scenario.ts';

/** The demo's names: a shop whose orders-api reads one table of its database. */
export const DEMO = {
  subscriptionId: '00000000-0000-0000-0000-00000000de00',
  resourceGroup: 'shop-identities',
  identityName: 'orders-api',
  namespace: 'shop',
  serviceAccount: 'orders-api',
  access: 'orders-api',
  role: 'orders_api',
  server: 'shop-pg',
  database: 'shop',
  grantedTable: 'orders',
  ungrantedTable: 'payments',
} as const;

/** The allow-list annotation: every identity in the shop's resource group, none elsewhere. */
export const allowedIdentities = `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${DEMO.resourceGroup}/*`;

/** The app's schema, created by the operator's Entra admin role (it owns the database, as on Azure). */
const SCHEMA_SQL = `
  CREATE TABLE ${DEMO.grantedTable} (id int PRIMARY KEY, item text, quantity int);
  INSERT INTO ${DEMO.grantedTable} VALUES (1, 'book', 2), (2, 'pen', 10), (3, 'lamp', 1);
  CREATE TABLE ${DEMO.ungrantedTable} (order_id int, card_last4 text);
  INSERT INTO ${DEMO.ungrantedTable} VALUES (1, '4242');`;

export async function createAppDatabaseWithData(info: HarnessInfo): Promise<void> {
  await createAppDatabase(info, DEMO.database, SCHEMA_SQL);
}

export async function createNamespace(core: k8s.CoreV1Api): Promise<k8s.V1Namespace> {
  await createOptedInNamespace(core, DEMO.namespace, allowedIdentities);
  return core.readNamespace({ name: DEMO.namespace });
}

export async function createServer(info: HarnessInfo, kubeConfig: k8s.KubeConfig): Promise<void> {
  await createDatabaseServer(info, kubeConfig, {
    name: DEMO.server,
    namespaces: [DEMO.namespace],
    databases: [DEMO.database],
  });
}

export const readServer = (custom: k8s.CustomObjectsApi): Promise<EntraDatabaseServer> =>
  custom.getClusterCustomObject({
    ...API,
    plural: SERVER_PLURAL,
    name: DEMO.server,
  }) as Promise<EntraDatabaseServer>;

export async function createServiceAccount(core: k8s.CoreV1Api): Promise<void> {
  await core.createNamespacedServiceAccount({
    namespace: DEMO.namespace,
    body: { metadata: { name: DEMO.serviceAccount } },
  });
}

/** CONNECT on the database, USAGE on public, SELECT on one table: the other table stays closed. */
export async function createOrdersAccess(
  custom: k8s.CustomObjectsApi,
  identity: IdentityView,
): Promise<void> {
  await createAccess(custom, DEMO.namespace, DEMO.access, {
    serviceAccountName: DEMO.serviceAccount,
    identity: identity.id,
    serverRef: DEMO.server,
    database: DEMO.database,
    roleName: DEMO.role,
    grants: [
      { target: 'database', privileges: ['CONNECT'] },
      { target: 'schema', schema: 'public', privileges: ['USAGE'] },
      { target: 'tables', schema: 'public', tables: [DEMO.grantedTable], privileges: ['SELECT'] },
    ],
  });
}

/** The table grants of `access` as "SELECT on orders", read back from the stored spec. */
export const tableGrants = (access: EntraDatabaseAccess): string =>
  (access.spec.grants ?? [])
    .flatMap((g) =>
      g.target === 'tables'
        ? [`${g.privileges.join(', ')} on ${(g.tables ?? ['all tables']).join(', ')}`]
        : [],
    )
    .join('; ');

/** The status a user reads with `kubectl get entradatabaseaccess -o yaml`, as short lines. */
export function describeAccess(access: EntraDatabaseAccess): string[] {
  const status = access.status ?? {};
  const conditions = (status.conditions ?? []).map((c) => `${c.type}=${c.status} (${c.reason})`);
  const { identity = {}, federatedCredential: fic = {}, connection = {} } = status;
  return [
    `conditions: ${conditions.join(', ')}`,
    `identity: clientId ${identity.clientId}, principalId ${identity.principalId}, tenantId ${identity.tenantId}`,
    `federatedCredential: ${fic.name} (issuer ${fic.issuer}, subject ${fic.subject})`,
    `connection: ${connection.user}@${connection.host}:${connection.port}/${connection.database} sslmode=${connection.sslMode} scope ${connection.tokenScope}`,
  ];
}
