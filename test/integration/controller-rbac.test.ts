// The RBAC proof: the chart's ServiceAccount, ClusterRole, Role(s) and bindings, as rendered by the
// real `helm template`, are applied to the harness kube-apiserver (RBAC authorization on), and the
// controller and webhook roles run with a TokenRequest token of that ServiceAccount, with the flags
// the chart's Deployment gives them. The controller happy path (server Ready, access Ready, the app
// logs in, deletion cleans up) and one admitted namespace, ServiceAccount and pod must succeed, and
// no log line of the product may mention a 403 or forbidden call.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACCESS_PLURAL,
  GROUP,
  NAMESPACE_WEBHOOK_PATH,
  POD_WEBHOOK_PATH,
  SERVER_PLURAL,
  SERVICE_ACCOUNT_WEBHOOK_PATH,
  VERSION,
} from '../../src/api/constants.ts';
import type { EntraDatabaseAccess, EntraDatabaseServer } from '../../src/api/types.ts';
import { parseConfig } from '../../src/config.ts';
import { type ControllerComponent, createControllerComponent } from '../../src/controller/component.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { startWebhookComponent, type WebhookComponent } from '../../src/webhook/component.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { freePort } from '../harness/ports.ts';
import { createAccess } from '../harness/scenario.ts';
import {
  POSTGRES_SCOPE,
  serviceAccountToken,
  workloadIdentityCredential,
} from '../harness/workload-identity.ts';

const harness = harnessInfo();
const repo = resolve(import.meta.dirname, '../..');
const chart = join(repo, 'charts/entra-access');
const api = { group: GROUP, version: VERSION };
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const RBAC_KINDS = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

type Obj = k8s.KubernetesObject & Record<string, unknown>;

function findHelm(): { path?: string; reason?: string } {
  try {
    const path = execFileSync('bash', ['hack/build-helm.sh'], {
      cwd: repo,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30 * 60_000,
    }).trim();
    return { path };
  } catch (error) {
    const reason = `hack/build-helm.sh failed: ${(error as Error).message}`;
    if (process.env.CI === 'true') throw new Error(reason);
    return { reason };
  }
}
const helmBin = harness ? findHelm() : { reason: 'no harness' };

function helmTemplate(namespace: string, set: string[]): Obj[] {
  const home = mkdtempSync(join(tmpdir(), 'helm-home-'));
  try {
    const result = spawnSync(
      helmBin.path!,
      ['template', 'entra-access', chart, '--namespace', namespace, ...set.flatMap((s) => ['--set', s])],
      {
        cwd: repo,
        encoding: 'utf8',
        timeout: 120_000,
        env: {
          ...process.env,
          HELM_CACHE_HOME: join(home, 'cache'),
          HELM_CONFIG_HOME: join(home, 'config'),
          HELM_DATA_HOME: join(home, 'data'),
        },
      },
    );
    if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
    return (k8s.loadAllYaml(result.stdout) as Array<Obj | null>).filter((o): o is Obj => o !== null);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

const until = <T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 40_000): Promise<T> =>
  pollUntil(read, ok, timeoutMs, 200);

const readyOf = (access: EntraDatabaseAccess | undefined) =>
  access?.status?.conditions?.find((c) => c.type === 'Ready');

describe.skipIf(!harness || !helmBin.path)(
  `controller and webhook with the chart's RBAC only${helmBin.reason ? ` (skipped: ${helmBin.reason})` : ''}`,
  () => {
    const run = uniqueName('rbac');
    const namespace = run;
    const subscriptionId = '00000000-0000-0000-0000-00000000c0b0';
    const resourceGroup = run;
    const database = run.replaceAll('-', '_');
    const serverName = `${run}-pg`;
    const role = `${database}_app`;
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

    const readAccess = (name: string) =>
      custom.getNamespacedCustomObject({ ...api, plural: ACCESS_PLURAL, namespace, name }).then(
        (o) => o as EntraDatabaseAccess,
        () => undefined,
      );

    async function appQuery(sql: string): Promise<string> {
      const sa = await serviceAccountToken(kc, namespace, 'orders-api');
      const credential = await workloadIdentityCredential(harness!, app.clientId, sa);
      const client = new pg.Client({
        host: harness!.postgres.host,
        port: harness!.postgres.port,
        database,
        user: role,
        password: async () => (await credential.getToken(POSTGRES_SCOPE))!.token,
        ssl: { ca: readFileSync(harness!.caFile, 'utf8') },
      });
      await client.connect();
      try {
        const { rows } = await client.query(sql);
        return JSON.stringify(rows);
      } catch (error) {
        return `ERROR: ${(error as Error).message}`;
      } finally {
        await client.end();
      }
    }

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
      rendered = helmTemplate(releaseNamespace, [
        `azure.oidcIssuerUrl=${harness!.kubernetes.issuer}`,
        `azure.tenantId=${harness!.azure.tenantId}`,
        `azure.authorityHost=${harness!.azure.url}`,
        `azure.armEndpoint=${harness!.azure.url}`,
        'azure.clusterName=harness',
        'certificates.mode=self',
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

      // 3. Azure identities and the app's database, as in controller.test.ts.
      emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
      app = await emulator.createIdentity({ subscriptionId, resourceGroup, name: 'orders-api' });
      const su = new pg.Client({ connectionString: harness!.postgres.superuserUrl });
      await su.connect();
      await su.query(`CREATE DATABASE ${database} OWNER "${harness!.azure.operator.postgresAdminRole}"`);
      await su.end();
      const db = new pg.Client({
        connectionString: harness!.postgres.superuserUrl.replace(/\/postgres\?/, `/${database}?`),
      });
      await db.connect();
      await db.query(`SET ROLE "${harness!.azure.operator.postgresAdminRole}"`);
      await db.query(
        'CREATE TABLE orders (id int, item text); INSERT INTO orders VALUES (1, $$book$$), (2, $$pen$$)',
      );
      await db.query('CREATE TABLE secrets (id int); INSERT INTO secrets VALUES (42)');
      await db.end();

      // 4. The webhook role in mode self, with the chart's configuration name, reached by URL.
      const port = await freePort();
      const base = `https://127.0.0.1:${port}`;
      const rule = (resource: string, operations: string[]) => [
        { apiGroups: [''], apiVersions: ['v1'], resources: [resource], operations },
      ];
      const optedIn = {
        matchLabels: { 'entra-access-rbac-test': run, 'entra-access.io/workload-identity': 'enabled' },
      };
      const common = {
        admissionReviewVersions: ['v1'],
        sideEffects: 'NoneOnDryRun',
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds: 5,
        failurePolicy: 'Fail',
      };
      await admission.deleteMutatingWebhookConfiguration({ name: configurationName }).catch(() => {});
      await admission.createMutatingWebhookConfiguration({
        body: {
          metadata: { name: configurationName },
          webhooks: [
            {
              ...common,
              name: 'pods.entra-access.io',
              clientConfig: { url: `${base}${POD_WEBHOOK_PATH}` },
              namespaceSelector: optedIn,
              rules: rule('pods', ['CREATE']),
            },
            {
              ...common,
              name: 'serviceaccounts.entra-access.io',
              clientConfig: { url: `${base}${SERVICE_ACCOUNT_WEBHOOK_PATH}` },
              namespaceSelector: optedIn,
              rules: rule('serviceaccounts', ['CREATE', 'UPDATE']),
            },
            {
              ...common,
              name: 'namespaces.entra-access.io',
              clientConfig: { url: `${base}${NAMESPACE_WEBHOOK_PATH}` },
              namespaceSelector: { matchLabels: { 'entra-access-rbac-test': run } },
              rules: rule('namespaces', ['CREATE', 'UPDATE']),
            },
          ],
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
      await until(
        async () => webhookRole!.readiness.every((check) => check.ready()),
        (ready) => ready,
      );
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
      // The CA Secret of sslRootCertSecretRef, in the release namespace as the chart requires.
      await core.createNamespacedSecret({
        namespace: releaseNamespace,
        body: {
          metadata: { name: `${run}-ca` },
          stringData: { 'ca.crt': readFileSync(harness!.caFile, 'utf8') },
        },
      });
      await custom.createClusterCustomObject({
        ...api,
        plural: SERVER_PLURAL,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'EntraDatabaseServer',
          metadata: { name: serverName },
          spec: {
            host: 'localhost',
            port: harness!.postgres.port,
            sslMode: 'verify-full',
            sslRootCertSecretRef: { name: `${run}-ca`, namespace: releaseNamespace },
            adminRole: harness!.azure.operator.postgresAdminRole,
            allowedNamespaces: { names: [namespace] },
            allowedDatabases: [database],
            allowedMemberOf: [],
          },
        } satisfies Omit<EntraDatabaseServer, 'status'>,
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
        ?.deleteClusterCustomObject({ ...api, plural: SERVER_PLURAL, name: serverName })
        .catch(() => {});
      await core?.deleteNamespacedSecret({ namespace: releaseNamespace, name: `${run}-ca` }).catch(() => {});
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
      const server = await until(
        () =>
          custom.getClusterCustomObject({
            ...api,
            plural: SERVER_PLURAL,
            name: serverName,
          }) as Promise<EntraDatabaseServer>,
        (s) => s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      );
      expect(
        server.status?.conditions?.find((c) => c.type === 'Ready'),
        JSON.stringify(server.status),
      ).toMatchObject({ status: 'True', reason: 'Connected' });
    });

    it('brings an access to Ready, and the app logs in and reads the granted table only', async () => {
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
        body: {
          metadata: { generateName: 'orders-' },
          spec: {
            serviceAccountName: 'orders-api',
            containers: [{ name: 'app', image: 'registry.example/app:1' }],
          },
        },
      });
      expect(created.metadata?.labels?.['azure.workload.identity/use']).toBe('true');
    });

    it('on deletion removes the FIC and drops the role', async () => {
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
      const su = new pg.Client({ connectionString: harness!.postgres.superuserUrl });
      await su.connect();
      const { rowCount } = await su.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      await su.end();
      expect(rowCount).toBe(0);
    });

    it('no Kubernetes call of the product was forbidden', () => {
      // Positive control: the capture did see the product's logs.
      expect(logLines.length).toBeGreaterThan(0);
      expect(forbiddenLines()).toEqual([]);
    });
  },
);
