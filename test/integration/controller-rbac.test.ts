// The RBAC proof: the chart's ServiceAccount, ClusterRole, Role(s) and bindings, as rendered by the
// real `helm template`, are applied to the harness kube-apiserver (RBAC authorization on), and the
// controller and webhook roles run with a TokenRequest token of that ServiceAccount, with the flags
// the chart's Deployment gives them. The controller happy path (server Ready, access Ready, the app
// logs in, deletion cleans up) and one admitted namespace, ServiceAccount and pod must succeed, and
// no log line of the product may mention a 403 or forbidden call.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_PLURAL } from '../../src/api/constants.ts';
import { parseConfig } from '../../src/config.ts';
import { type ControllerComponent, createControllerComponent } from '../../src/controller/component.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { startWebhookComponent, type WebhookComponent } from '../../src/webhook/component.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, poller, pollFor, uniqueName } from '../harness/context.ts';
import { CHART, findHelm, helmTemplate, type ChartObject as Obj } from '../harness/helm.ts';
import { API, appPod, entraAccessWebhooks, mergePatch } from '../harness/kube.ts';
import { freePort } from '../harness/ports.ts';
import {
  conditionOf,
  createAppDatabase,
  createDatabaseServer,
  waitForServerReady,
} from '../harness/scenario.ts';
import { serviceAccountToken } from '../harness/workload-identity.ts';
import {
  expectOrdersAppDeletedCleanly,
  expectOrdersAppReady,
  type HappyPath,
  ORDERS_APP_SQL,
  ordersAppNames,
} from '../support/controller-happy-path.ts';

const harness = harnessInfo();
const RBAC_KINDS = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

const helmBin = harness ? findHelm() : { reason: 'no harness' };

const until = poller({ timeoutMs: 40_000, intervalMs: 200 });

describe.skipIf(!harness || !helmBin.path)(
  `controller and webhook with the chart's RBAC only${helmBin.reason ? ` (skipped: ${helmBin.reason})` : ''}`,
  () => {
    const run = uniqueName('rbac');
    const names = ordersAppNames(run);
    const { namespace, database, serverName } = names;
    const subscriptionId = '00000000-0000-0000-0000-00000000c0b0';
    const resourceGroup = run;
    const logLines: string[] = [];
    const applied: Obj[] = [];
    let releaseNamespace: string;
    let rendered: Obj[];
    let chartArgs: string[];
    let chartSa: string;
    let kc: k8s.KubeConfig;
    let asChart: k8s.KubeConfig;
    let core: k8s.CoreV1Api;
    let custom: k8s.CustomObjectsApi;
    let admission: k8s.AdmissionregistrationV1Api;
    let emulator: AzureEmulatorClient;
    let controller: ControllerComponent | undefined;
    let webhookRole: WebhookComponent | undefined;
    let dir: string;
    let configurationName: string;
    let certSecretName: string;
    let createdNamespace: k8s.V1Namespace;
    let app: { id: string; clientId: string; principalId: string };

    // Every product log line, at debug, so a swallowed 403 (a retried cache, a failed event) shows.
    const logger = pino(
      { level: 'debug', base: { component: 'entra-access' } },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString().split('\n')) if (line) logLines.push(line);
          done();
        },
      }),
    );
    const forbiddenLines = () => logLines.filter((line) => /forbidden|\b403\b/i.test(line));

    /** What the test reads and checks with: the admin's, not the chart's. */
    const happyPath = (): HappyPath => ({
      ...names,
      info: harness!,
      kubeConfig: kc,
      emulator,
      app,
      timeoutMs: 40_000,
    });

    /** The chart's flags, then the ones a test process must differ in (ports, files, kubeconfig). */
    function roleConfig(roleFlag: '--controller' | '--webhook', extra: string[]) {
      return parseConfig(
        [
          roleFlag,
          ...chartArgs,
          `--kubeconfig=${harness!.kubernetes.kubeconfigPath}`,
          '--metrics-port=0',
          '--health-port=0',
          ...extra,
        ],
        {},
      );
    }

    beforeAll(async () => {
      releaseNamespace = harness!.azure.operator.namespace;
      kc = adminKubeConfig(harness!);
      core = kc.makeApiClient(k8s.CoreV1Api);
      custom = kc.makeApiClient(k8s.CustomObjectsApi);
      admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
      dir = mkdtempSync(join(tmpdir(), 'controller-rbac-'));

      // 1. The chart, rendered for the harness; only its identity and RBAC objects are applied.
      rendered = helmTemplate(helmBin.path!, join(dir, 'helm-home'), [
        'entra-access',
        CHART,
        '--namespace',
        releaseNamespace,
        ...[
          `azure.oidcIssuerUrl=${harness!.kubernetes.issuer}`,
          `azure.tenantId=${harness!.azure.tenantId}`,
          `azure.authorityHost=${harness!.azure.url}`,
          `azure.armEndpoint=${harness!.azure.url}`,
          'azure.clusterName=harness',
          'certificates.mode=self',
        ].flatMap((value) => ['--set', value]),
      ]);
      const deployment = rendered.find((o) => o.kind === 'Deployment') as k8s.V1Deployment;
      chartArgs = deployment.spec!.template.spec!.containers[0]!.args ?? [];
      chartSa = deployment.spec!.template.spec!.serviceAccountName!;
      const flag = (name: string) =>
        chartArgs.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? '';
      configurationName = flag('webhook-configuration-name');
      certSecretName = flag('cert-secret-name');
      const objectApi = k8s.KubernetesObjectApi.makeApiClient(kc);
      for (const object of rendered.filter((o) => RBAC_KINDS.includes(o.kind!))) {
        try {
          await objectApi.create(object);
        } catch (error) {
          if ((error as { code?: number }).code !== 409) throw error;
          // The harness made the operator's ServiceAccount already (its FIC names it); the rest is replaced.
          if (object.kind === 'ServiceAccount') {
            applied.push(object);
            continue;
          }
          const existing = await objectApi.read({
            apiVersion: object.apiVersion,
            kind: object.kind,
            metadata: { name: object.metadata!.name!, namespace: object.metadata?.namespace },
          });
          await objectApi.replace({
            ...object,
            metadata: { ...object.metadata, resourceVersion: existing.metadata?.resourceVersion },
          });
        }
        applied.push(object);
      }

      // 2. The chart ServiceAccount's credentials: a TokenRequest token, nothing else.
      const token = await core.createNamespacedServiceAccountToken({
        namespace: releaseNamespace,
        name: chartSa,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      });
      asChart = new k8s.KubeConfig();
      asChart.loadFromOptions({
        clusters: [{ name: 'h', server: harness!.kubernetes.url, caFile: harness!.caFile }],
        users: [{ name: chartSa, token: token.status?.token }],
        contexts: [{ name: 'h', cluster: 'h', user: chartSa }],
        currentContext: 'h',
      });

      // 3. Azure identities and the app's database, as in controller-happy-path.test.ts.
      emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
      app = await emulator.createIdentity({ subscriptionId, resourceGroup, name: 'orders-api' });
      await createAppDatabase(harness!, database, ORDERS_APP_SQL);

      // 4. The webhook role in mode self, with the chart's configuration name, reached by URL.
      const port = await freePort();
      const base = `https://127.0.0.1:${port}`;
      await admission.deleteMutatingWebhookConfiguration({ name: configurationName }).catch(() => {});
      await admission.createMutatingWebhookConfiguration({
        body: {
          metadata: { name: configurationName },
          webhooks: entraAccessWebhooks({
            baseUrl: base,
            optedIn: {
              matchLabels: { 'entra-access-rbac-test': run, 'entra-access.io/workload-identity': 'enabled' },
            },
            namespaces: { matchLabels: { 'entra-access-rbac-test': run } },
            allFail: true,
          }),
        },
      });
      webhookRole = await startWebhookComponent(
        roleConfig('--webhook', [
          `--webhook-port=${port}`,
          '--bind-address=127.0.0.1',
          `--cert-dir=${join(dir, 'webhook')}`,
        ]),
        {
          kubeConfig: asChart,
          logger,
          metrics: createMetrics(),
          certificateOptions: { ipAddresses: ['127.0.0.1'] },
        },
      );
      await pollFor(() => webhookRole!.readiness.every((check) => check.ready()), 40_000, 200);
      await until(
        () => admission.readMutatingWebhookConfiguration({ name: configurationName }),
        (c) => (c.webhooks ?? []).every((w) => Boolean(w.clientConfig.caBundle)),
      );

      // 5. The app namespace: its create is admitted by the webhook (the opt-in label).
      createdNamespace = await core.createNamespace({
        body: {
          metadata: {
            name: namespace,
            labels: { 'entra-access-rbac-test': run },
            annotations: {
              'entra-access.io/workload-identity': 'enabled',
              'entra-access.io/allowed-identities': `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/*`,
            },
          },
        },
      });
      // The server; the CA Secret of its sslRootCertSecretRef is in the release namespace (the
      // operator's), as the chart requires.
      await createDatabaseServer(harness!, kc, {
        name: serverName,
        namespaces: [namespace],
        databases: [database],
      });

      // 6. The controller role: Kubernetes as the chart's ServiceAccount, Azure as its workload identity.
      const tokenFile = join(dir, 'operator-token');
      await writeFile(tokenFile, await serviceAccountToken(kc, releaseNamespace, chartSa));
      controller = createControllerComponent(roleConfig('--controller', []), {
        kubeConfig: asChart,
        logger,
        metrics: createMetrics(),
        azureEnv: {
          AZURE_CLIENT_ID: harness!.azure.operator.clientId,
          AZURE_TENANT_ID: harness!.azure.tenantId,
          AZURE_FEDERATED_TOKEN_FILE: tokenFile,
        },
      });
      await controller.start();
    });

    afterAll(async () => {
      await controller?.stop();
      await webhookRole?.stop();
      await admission?.deleteMutatingWebhookConfiguration({ name: configurationName }).catch(() => {});
      await core?.deleteNamespace({ name: namespace }).catch(() => {});
      await custom
        ?.deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name: serverName })
        .catch(() => {});
      await core
        ?.deleteNamespacedSecret({ namespace: releaseNamespace, name: `${serverName}-ca` })
        .catch(() => {});
      if (certSecretName)
        await core
          ?.deleteNamespacedSecret({ namespace: releaseNamespace, name: certSecretName })
          .catch(() => {});
      // The harness's own ServiceAccount stays; the chart's RBAC objects go.
      const objectApi = kc ? k8s.KubernetesObjectApi.makeApiClient(kc) : undefined;
      for (const object of applied.filter((o) => o.kind !== 'ServiceAccount'))
        await objectApi?.delete(object).catch(() => {});
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('renders the RBAC objects for the harness operator ServiceAccount', () => {
      expect(chartSa).toBe(harness!.azure.operator.serviceAccount);
      expect(applied.map((o) => o.kind).sort()).toEqual(
        expect.arrayContaining([
          'ClusterRole',
          'ClusterRoleBinding',
          'Role',
          'RoleBinding',
          'ServiceAccount',
        ]),
      );
      expect(configurationName).not.toBe('');
      expect(certSecretName).not.toBe('');
    });

    it('the chart ServiceAccount is not an admin: RBAC is enforced for it', async () => {
      const asChartCore = asChart.makeApiClient(k8s.CoreV1Api);
      await expect(asChartCore.listNamespacedSecret({ namespace: 'default' })).rejects.toMatchObject({
        code: 403,
      });
    });

    it('the webhook admitted the namespace and patched the caBundle of its configuration', async () => {
      expect(createdNamespace.metadata?.labels?.['entra-access.io/workload-identity']).toBe('enabled');
      expect(webhookRole?.certificateManager?.ready).toBe(true);
    });

    it('makes the server Ready', async () => {
      const server = await waitForServerReady(custom, serverName, 40_000);
      expect(conditionOf(server), JSON.stringify(server.status)).toMatchObject({
        status: 'True',
        reason: 'Connected',
      });
    });

    it('brings an access to Ready, and the app logs in and reads the granted table only', async () => {
      await expectOrdersAppReady(happyPath());
    });

    it('the webhook admits a ServiceAccount update and a pod of the bound ServiceAccount', async () => {
      // A dry-run update that drops the client-id: the webhook puts it back at admission.
      const updated = await core.patchNamespacedServiceAccount(
        {
          namespace,
          name: 'orders-api',
          dryRun: 'All',
          body: { metadata: { annotations: { 'azure.workload.identity/client-id': null } } },
        },
        mergePatch,
      );
      expect(updated.metadata?.annotations?.['azure.workload.identity/client-id']).toBe(app.clientId);
      const created = await core.createNamespacedPod({
        namespace,
        body: appPod('orders-api', { generateName: 'orders-' }),
      });
      expect(created.metadata?.labels?.['azure.workload.identity/use']).toBe('true');
    });

    it('on deletion removes the FIC and drops the role', async () => {
      await expectOrdersAppDeletedCleanly(happyPath());
    });

    it('no Kubernetes call of the product was forbidden', () => {
      // Positive control: the capture did see the product's logs.
      expect(logLines.length).toBeGreaterThan(0);
      expect(forbiddenLines()).toEqual([]);
    });
  },
);
