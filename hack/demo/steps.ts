// `make demo`, steps 2 to 13, in the process demo.ts starts once the harness is up (with
// NODE_EXTRA_CA_CERTS naming the harness CA). Each step is one call of `step`, in the order a
// newcomer would do it by hand; the operator is always stopped, and a failure exits non-zero.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import {
  ACCESS_PLURAL,
  GROUP,
  WI_CLIENT_ID_ANNOTATION,
  WI_TENANT_ID_ANNOTATION,
} from '../../src/api/constants.ts';
import { AzureEmulatorClient, type IdentityView } from '../../test/harness/azure-emulator/client.ts';
import type { HarnessInfo } from '../../test/harness/harness.ts';
import {
  API,
  conditionOf,
  isReady,
  readAccess,
  rolesOfPrincipal,
  superuserQuery,
} from '../../test/harness/scenario.ts';
import { type App, exchangeToken, query, startApp } from './app.ts';
import { type RunningOperator, startOperator } from './operator.ts';
import { createAppPod, describeInjection } from './pod.ts';
import { StepFailure, step, waitFor } from './report.ts';
import {
  allowedIdentities,
  createAppDatabaseWithData,
  createNamespace,
  createOrdersAccess,
  createServer,
  createServiceAccount,
  DEMO,
  describeAccess,
  readServer,
  tableGrants,
} from './tenant.ts';

const infoFile = process.env.DEMO_HARNESS_INFO;
if (!infoFile)
  throw new Error('steps.ts is started by hack/demo/demo.ts (make demo), which sets DEMO_HARNESS_INFO');
const info = JSON.parse(readFileSync(infoFile, 'utf8')) as HarnessInfo;
const kubeConfig = new k8s.KubeConfig();
kubeConfig.loadFromFile(info.kubernetes.kubeconfigPath);
const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
const custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
const emulator = new AzureEmulatorClient(info.azure.url, { ca: readFileSync(info.caFile) });

let operator: RunningOperator | undefined;
let identity: IdentityView;
let pod: k8s.V1Pod;
let app: App;

const ficsOf = async (id: string) =>
  (await emulator.listIdentities()).find((i) => i.id.toLowerCase() === id.toLowerCase())
    ?.federatedIdentityCredentials ?? [];

async function runSteps(): Promise<void> {
  await step(2, 'check the CRDs', async () => {
    const crds = await kubeConfig.makeApiClient(k8s.ApiextensionsV1Api).listCustomResourceDefinition();
    const ours = crds.items.filter((crd) => crd.spec.group === GROUP);
    const established = ours.filter((crd) =>
      crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'),
    );
    if (established.length !== 2)
      throw new Error(`expected 2 established ${GROUP} CRDs, got ${established.length}`);
    return { summary: `CRDs installed: ${established.map((crd) => crd.spec.names.kind).join(', ')}` };
  });

  await step(3, 'start entra-access', async () => {
    operator = await startOperator(info, kubeConfig);
    return {
      summary: `operator running: one \`entra-access run\` process (webhook :${operator.webhookPort}, controller leading)`,
      details: [
        `MutatingWebhookConfiguration ${operator.configurationName}: pods, serviceaccounts, namespaces → https://127.0.0.1:${operator.webhookPort} (caBundle set, injection mode inject)`,
      ],
    };
  });

  await step(4, 'create the opted-in namespace', async () => {
    const ns = await createNamespace(core);
    const label = ns.metadata?.labels?.['entra-access.io/workload-identity'];
    if (label !== 'enabled')
      throw new Error('the webhook did not mirror the opt-in annotation into the label');
    return {
      summary: `namespace ${DEMO.namespace} opted in (label entra-access.io/workload-identity=enabled added by the webhook)`,
      details: [`allowed identities: ${allowedIdentities}`],
    };
  });

  await step(5, 'create the app identity and database', async () => {
    identity = await emulator.createIdentity({
      subscriptionId: DEMO.subscriptionId,
      resourceGroup: DEMO.resourceGroup,
      name: DEMO.identityName,
    });
    await createAppDatabaseWithData(info);
    return {
      summary: `managed identity ${DEMO.identityName} (clientId ${identity.clientId}) and database ${DEMO.database}: tables ${DEMO.grantedTable} (3 rows), ${DEMO.ungrantedTable} (1 row)`,
    };
  });

  await step(6, 'create the EntraDatabaseServer', async () => {
    await createServer(info, kubeConfig);
    const server = await waitFor(
      () => readServer(custom),
      (s) => s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      (s) => `not Ready: ${JSON.stringify(s.status?.conditions ?? [])}`,
    );
    const ready = server.status?.conditions?.find((c) => c.type === 'Ready');
    return {
      summary: `EntraDatabaseServer ${DEMO.server} Ready (${ready?.reason}): PostgreSQL ${server.status?.serverVersion}, operator logged in as Entra admin ${server.spec.adminRole}`,
    };
  });

  await step(7, 'create the ServiceAccount and EntraDatabaseAccess', async () => {
    await createServiceAccount(core);
    await createOrdersAccess(custom, identity);
    const access = await waitFor(
      () => readAccess(custom, DEMO.namespace, DEMO.access),
      isReady,
      (a) => `not Ready: ${JSON.stringify(a?.status?.conditions ?? [])}`,
    );
    const sa = await core.readNamespacedServiceAccount({
      namespace: DEMO.namespace,
      name: DEMO.serviceAccount,
    });
    const fics = await ficsOf(identity.id);
    return {
      summary: `EntraDatabaseAccess ${DEMO.namespace}/${DEMO.access} Ready (${conditionOf(access)?.reason}): ${tableGrants(access!)} for role ${access?.status?.connection?.user}`,
      details: [
        ...describeAccess(access!),
        `ServiceAccount ${DEMO.serviceAccount}: ${WI_CLIENT_ID_ANNOTATION}=${sa.metadata?.annotations?.[WI_CLIENT_ID_ANNOTATION]}, ${WI_TENANT_ID_ANNOTATION}=${sa.metadata?.annotations?.[WI_TENANT_ID_ANNOTATION]}`,
        `Azure: identity ${DEMO.identityName} has FICs [${fics.map((f) => f.name).join(', ')}]`,
      ],
    };
  });

  await step(8, 'create a pod', async () => {
    const access = await readAccess(custom, DEMO.namespace, DEMO.access);
    pod = await createAppPod(core, access?.status?.connection ?? {});
    const details = describeInjection(pod);
    return {
      summary: `pod ${DEMO.namespace}/${pod.metadata?.name} admitted and mutated by the webhook`,
      details,
    };
  });

  await step(9, 'exchange the pod token', async () => {
    const access = await readAccess(custom, DEMO.namespace, DEMO.access);
    app = await startApp(info, core, pod);
    const token = await exchangeToken(app);
    if (token.oid !== access?.status?.identity?.principalId)
      throw new Error(`token oid ${token.oid} is not the identity's principalId`);
    const minutes = Math.round((token.expiresOn.getTime() - Date.now()) / 60_000);
    return {
      summary: `token exchange in the pod: TokenRequest → @azure/identity, default path, Entra at login.microsoftonline.com → Entra token for ${token.scope} (oid = identity principalId, ${minutes} min)`,
      details: [
        `projected token: sub ${app.projected.subject}, aud ${app.projected.audience}, bound to pod ${pod.metadata?.name}`,
        `the app ran with the pod's env, but AZURE_AUTHORITY_HOST=${app.sandbox.env.AZURE_AUTHORITY_HOST}, a name that reaches the emulator only inside its sandbox (test/harness/pod-sandbox.ts)`,
      ],
    };
  });

  await step(10, 'log in and run the granted query', async () => {
    const sql = `SELECT id, item, quantity FROM ${DEMO.grantedTable} ORDER BY id`;
    const result = await query(app, sql);
    if ('error' in result) throw new Error(`${sql}: ${result.error}`);
    if (result.rows.length !== 3) throw new Error(`${sql}: expected 3 rows, got ${result.rows.length}`);
    return {
      summary: `pg login as ${app.sandbox.env.PGUSER} with the token; ${sql} → ${result.rows.length} rows`,
      details: result.rows.map((row) => JSON.stringify(row)),
    };
  });

  await step(11, 'run the ungranted query', async () => {
    const sql = `SELECT * FROM ${DEMO.ungrantedTable}`;
    const result = await query(app, sql);
    if (!('error' in result)) throw new Error(`${sql} was allowed: ${JSON.stringify(result.rows)}`);
    if (!/permission denied/.test(result.error))
      throw new Error(`${sql} failed for another reason: ${result.error}`);
    return { summary: `${sql} refused: ${result.error}` };
  });

  await step(12, 'delete the EntraDatabaseAccess', async () => {
    const before = await readAccess(custom, DEMO.namespace, DEMO.access);
    const ficName = before?.status?.federatedCredential?.name;
    await custom.deleteNamespacedCustomObject({
      ...API,
      plural: ACCESS_PLURAL,
      namespace: DEMO.namespace,
      name: DEMO.access,
    });
    await waitFor(
      () => readAccess(custom, DEMO.namespace, DEMO.access),
      (a) => a === undefined,
      (a) => `still there (finalizer): ${JSON.stringify(a?.status?.conditions ?? [])}`,
    );
    const fics = await ficsOf(identity.id);
    const roles = await rolesOfPrincipal(info, identity.principalId);
    const role = await superuserQuery(info, 'SELECT 1 FROM pg_roles WHERE rolname = $1', [DEMO.role]);
    if (fics.length > 0)
      throw new Error(`FICs left on ${DEMO.identityName}: ${fics.map((f) => f.name).join(', ')}`);
    if (roles.length > 0 || role.length > 0) throw new Error(`role ${DEMO.role} still exists`);
    return {
      summary: `EntraDatabaseAccess deleted: FIC ${ficName} gone from ${DEMO.identityName} (0 FICs), role ${DEMO.role} dropped`,
    };
  });

  await step(13, 'stop entra-access', async () => {
    const running = operator!;
    operator = undefined;
    await running.process.stop(10_000);
    const code = await running.process.exited;
    const released = readFileSync(running.process.logFile, 'utf8').includes('released the lease');
    if (code !== 0) throw new Error(`operator exited with code ${code}`);
    return { summary: `operator stopped on SIGTERM (exit 0${released ? ', lease released' : ''})` };
  });
}

try {
  await runSteps();
} catch (error) {
  const detail = error instanceof StepFailure ? error.detail : '';
  const tail = detail || operator?.process.tail(40) || '';
  if (tail) process.stdout.write(`--- entra-access log (last lines) ---\n${tail}\n---\n`);
  await operator?.process.stop(5000);
  process.exit(1);
}
