// The webhook through the real kube-apiserver: real MutatingWebhookConfigurations with a real
// caBundle call entra-access (running in this process on 127.0.0.1), and every assertion reads
// the object back from the apiserver. Two instances run, one per injection mode, each selecting
// its own namespaces; a stand-in for the AKS add-on's webhook proves the ordering by name.
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACCESS_PLURAL,
  AZURE_WI_WEBHOOK_CONFIGURATION_NAME,
  DEFAULT_WEBHOOK_CONFIGURATION_NAME,
} from '../../src/api/constants.ts';
import { parseConfig } from '../../src/config.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { startWebhookComponent, type WebhookComponent } from '../../src/webhook/component.ts';
import { adminKubeConfig, harnessInfo, poller, pollFor, uniqueName } from '../harness/context.ts';
import { API, entraAccessWebhooks, mergePatch } from '../harness/kube.ts';
import { createCertificateAuthority, issueCertificate } from '../harness/pki.ts';
import { freePort } from '../harness/ports.ts';
import { makeTempDir, removeTempDir } from '../harness/processes.ts';
import { createAccess } from '../harness/scenario.ts';

const harness = harnessInfo();
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT_ID = '11111111-2222-3333-4444-555555555555';
const run = uniqueName('wh');

const until = poller({ timeoutMs: 10_000 });

describe.skipIf(!harness)('admission webhook through the real apiserver', () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let admission: k8s.AdmissionregistrationV1Api;
  let dir: string;
  const instances: WebhookComponent[] = [];
  let standIn: Server | undefined;
  const configurations: string[] = [];
  const namespaces: string[] = [];

  /** One entra-access webhook instance, and a configuration (named `name`) routing to it. */
  async function startInstance(mode: 'label' | 'inject', name: string, certDir: string, caBundle: string) {
    const port = await freePort();
    const config = parseConfig(
      [
        '--webhook',
        `--kubeconfig=${harness!.kubernetes.kubeconfigPath}`,
        `--webhook-port=${port}`,
        `--cert-dir=${certDir}`,
        '--bind-address=127.0.0.1',
        `--injection-mode=${mode}`,
        `--tenant-id=${TENANT}`,
        '--extra-pod-labels=team=payments,tier=backend',
        '--metrics-port=0',
        '--health-port=0',
        '--log-level=warn',
      ],
      {},
    );
    const instance = await startWebhookComponent(config, {
      kubeConfig: kc,
      logger: createLogger('warn'),
      metrics: createMetrics(),
    });
    instances.push(instance);
    await pollFor(() => instance.readiness.every((check) => check.ready()), 10_000);
    const base = `https://127.0.0.1:${instance.port}`;
    const selector = (extra: Record<string, string>): k8s.V1LabelSelector => ({
      matchLabels: { 'entra-access-test': run, 'test-mode': mode, ...extra },
    });
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name },
        webhooks: entraAccessWebhooks({
          baseUrl: base,
          caBundle,
          optedIn: selector({ 'entra-access.io/workload-identity': 'enabled' }),
          namespaces: selector({}),
        }),
      },
    });
    configurations.push(name);
  }

  async function optedInNamespace(
    mode: 'label' | 'inject',
    extra: Record<string, string> = {},
  ): Promise<string> {
    const name = uniqueName(`wh-${mode}`);
    namespaces.push(name);
    await core.createNamespace({
      body: {
        metadata: {
          name,
          labels: { 'entra-access-test': run, 'test-mode': mode },
          annotations: { 'entra-access.io/workload-identity': 'enabled', ...extra },
        },
      },
    });
    // The label comes from our namespace webhook; the pod and SA webhooks select on it.
    await until(
      () => core.readNamespace({ name }),
      (ns) => ns.metadata?.labels?.['entra-access.io/workload-identity'] === 'enabled',
    );
    return name;
  }

  /** An EntraDatabaseAccess naming `serviceAccount`, with the status the controller would write. */
  async function bindServiceAccount(namespace: string, serviceAccount: string): Promise<void> {
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const name = `${serviceAccount}-access`;
    await createAccess(custom, namespace, name, {
      serviceAccountName: serviceAccount,
      identity: `/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${serviceAccount}`,
      serverRef: 'orders-pg',
      database: 'orders',
      grants: null,
    });
    await custom.patchNamespacedCustomObjectStatus(
      {
        ...API,
        plural: ACCESS_PLURAL,
        namespace,
        name,
        body: {
          status: {
            identity: {
              clientId: CLIENT_ID,
              principalId: '99999999-0000-0000-0000-000000000000',
              tenantId: TENANT,
            },
          },
        },
      },
      mergePatch,
    );
    // Wait until the webhook's cache has it: a dry-run create shows what admission would do.
    await until(
      () =>
        core.createNamespacedServiceAccount({
          namespace,
          body: { metadata: { name: serviceAccount } },
          dryRun: 'All',
        }),
      (sa) => sa.metadata?.annotations?.['azure.workload.identity/client-id'] === CLIENT_ID,
    );
  }

  function pod(name: string, serviceAccountName?: string): k8s.V1Pod {
    return {
      metadata: { generateName: `${name}-` },
      spec: {
        ...(serviceAccountName ? { serviceAccountName } : {}),
        initContainers: [
          { name: 'migrate', image: 'registry.example/migrate:1' },
          { name: 'proxy', image: 'registry.example/proxy:1', restartPolicy: 'Always' },
        ],
        containers: [
          {
            name: 'app',
            image: 'registry.example/app:1',
            env: [{ name: 'AZURE_CLIENT_ID', value: 'set-by-user' }],
          },
          { name: 'metrics', image: 'registry.example/metrics:1' },
        ],
      },
    };
  }

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    core = kc.makeApiClient(k8s.CoreV1Api);
    admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    dir = makeTempDir('webhook-test');
    const ca = await createCertificateAuthority('webhook test CA');
    const serving = await issueCertificate(ca, {
      commonName: 'entra-access-webhook',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
    });
    await writeFile(join(dir, 'tls.crt'), serving.certPem);
    await writeFile(join(dir, 'tls.key'), serving.keyPem);
    const caBundle = Buffer.from(ca.certPem).toString('base64');
    await startInstance('label', DEFAULT_WEBHOOK_CONFIGURATION_NAME, dir, caBundle);
    await startInstance('inject', `${DEFAULT_WEBHOOK_CONFIGURATION_NAME}-inject-test`, dir, caBundle);

    // A stand-in for the AKS workload-identity webhook: it fires only for pods already labelled
    // azure.workload.identity/use=true when its turn comes, as the real one does, and marks them.
    const standInPort = await freePort();
    standIn = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        const { request } = JSON.parse(body) as {
          request: { uid: string; object: { metadata?: { annotations?: Record<string, string> } } };
        };
        const uid = request.uid;
        const patch = request.object.metadata?.annotations
          ? [{ op: 'add', path: '/metadata/annotations/stand-in-azure-wi-webhook', value: 'fired' }]
          : [{ op: 'add', path: '/metadata/annotations', value: { 'stand-in-azure-wi-webhook': 'fired' } }];
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: {
              uid,
              allowed: true,
              patchType: 'JSONPatch',
              patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
            },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => standIn!.listen(standInPort, '127.0.0.1', resolve));
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: AZURE_WI_WEBHOOK_CONFIGURATION_NAME },
        webhooks: [
          {
            name: 'mutation.azure-workload-identity.io',
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            reinvocationPolicy: 'Never',
            clientConfig: { url: `https://127.0.0.1:${standInPort}/mutate`, caBundle },
            objectSelector: { matchLabels: { 'azure.workload.identity/use': 'true' } },
            namespaceSelector: { matchLabels: { 'entra-access-test': run } },
            rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'] }],
          },
        ],
      },
    });
    configurations.push(AZURE_WI_WEBHOOK_CONFIGURATION_NAME);
  });

  afterAll(async () => {
    for (const name of configurations)
      await admission?.deleteMutatingWebhookConfiguration({ name }).catch(() => {});
    for (const name of namespaces) await core?.deleteNamespace({ name }).catch(() => {});
    for (const instance of instances) await instance.stop();
    await new Promise<void>((resolve) => (standIn ? standIn.close(() => resolve()) : resolve()));
    if (dir) removeTempDir(dir);
  });

  it('mirrors the namespace opt-in annotation into the label, and removes it with the annotation', async () => {
    const name = await optedInNamespace('label');
    const ns = await core.readNamespace({ name });
    expect(ns.metadata?.labels).toMatchObject({
      'entra-access.io/workload-identity': 'enabled',
      'entra-access-test': run,
    });

    await core.patchNamespace(
      { name, body: { metadata: { annotations: { 'entra-access.io/workload-identity': null } } } },
      mergePatch,
    );
    const after = await core.readNamespace({ name });
    expect(after.metadata?.labels?.['entra-access.io/workload-identity']).toBeUndefined();
    expect(after.metadata?.labels?.['entra-access-test']).toBe(run);
  });

  it('annotates a new ServiceAccount named by an EntraDatabaseAccess with client-id and tenant-id', async () => {
    const namespace = await optedInNamespace('label');
    await bindServiceAccount(namespace, 'orders-api');
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'orders-api' } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'unrelated' } } });

    const sa = await core.readNamespacedServiceAccount({ namespace, name: 'orders-api' });
    expect(sa.metadata?.annotations).toMatchObject({
      'azure.workload.identity/client-id': CLIENT_ID,
      'azure.workload.identity/tenant-id': TENANT,
    });
    const unrelated = await core.readNamespacedServiceAccount({ namespace, name: 'unrelated' });
    expect(unrelated.metadata?.annotations?.['azure.workload.identity/client-id']).toBeUndefined();
  });

  it('labels a pod in label mode, and the add-on webhook named after ours then fires for it', async () => {
    const namespace = await optedInNamespace('label', {
      'entra-access.io/extra-pod-labels': 'cost-center=42',
    });
    await bindServiceAccount(namespace, 'orders-api');
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'orders-api' } } });
    const created = await core.createNamespacedPod({ namespace, body: pod('orders', 'orders-api') });
    const read = await core.readNamespacedPod({ namespace, name: created.metadata!.name! });

    expect(read.metadata?.labels).toMatchObject({
      'azure.workload.identity/use': 'true',
      team: 'payments',
      tier: 'backend',
      'cost-center': '42',
    });
    // Our configuration (default name) sorts before the add-on's, so the label was there in time.
    expect(read.metadata?.annotations?.['stand-in-azure-wi-webhook']).toBe('fired');
    // Label mode leaves injection to the add-on.
    expect(read.spec?.volumes?.some((v) => v.name === 'azure-identity-token')).toBe(false);
    expect(read.spec?.initContainers?.[1]?.restartPolicy).toBe('Always');
  });

  it('skips an invalid namespace extra label and reports it as a Warning Event on the namespace', async () => {
    const namespace = await optedInNamespace('label', {
      'entra-access.io/extra-pod-labels': 'good=yes,bad key=x',
    });
    await bindServiceAccount(namespace, 'orders-api');
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'orders-api' } } });
    const created = await core.createNamespacedPod({ namespace, body: pod('labels', 'orders-api') });
    const read = await core.readNamespacedPod({ namespace, name: created.metadata!.name! });
    expect(read.metadata?.labels).toMatchObject({ 'azure.workload.identity/use': 'true', good: 'yes' });
    expect(Object.keys(read.metadata?.labels ?? {})).not.toContain('bad key');

    const events = await until(
      () => core.listNamespacedEvent({ namespace }),
      (list) => list.items.some((e) => e.reason === 'InvalidExtraPodLabels'),
    );
    const event = events.items.find((e) => e.reason === 'InvalidExtraPodLabels');
    expect(event).toMatchObject({ type: 'Warning', involvedObject: { kind: 'Namespace', name: namespace } });
    expect(event?.message).toContain('bad key');
  });

  it('leaves pods of a service account without identity alone', async () => {
    const namespace = await optedInNamespace('label');
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'plain' } } });
    const created = await core.createNamespacedPod({ namespace, body: pod('plain', 'plain') });
    const read = await core.readNamespacedPod({ namespace, name: created.metadata!.name! });
    expect(read.metadata?.labels?.['azure.workload.identity/use']).toBeUndefined();
    expect(read.metadata?.annotations?.['stand-in-azure-wi-webhook']).toBeUndefined();
  });

  it('injects env and the projected token volume in inject mode, and the apiserver accepts them', async () => {
    const namespace = await optedInNamespace('inject');
    await bindServiceAccount(namespace, 'orders-api');
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'orders-api' } } });
    const created = await core.createNamespacedPod({ namespace, body: pod('orders', 'orders-api') });
    const read = await core.readNamespacedPod({ namespace, name: created.metadata!.name! });

    const volume = read.spec?.volumes?.find((v) => v.name === 'azure-identity-token');
    expect(volume?.projected?.sources?.[0]?.serviceAccountToken).toMatchObject({
      audience: 'api://AzureADTokenExchange',
      expirationSeconds: 3600,
      path: 'azure-identity-token',
    });
    const all = [...(read.spec?.initContainers ?? []), ...(read.spec?.containers ?? [])];
    for (const container of all) {
      const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
      expect(env.AZURE_FEDERATED_TOKEN_FILE).toBe('/var/run/secrets/azure/tokens/azure-identity-token');
      expect(env.AZURE_TENANT_ID).toBe(TENANT);
      expect(env.AZURE_AUTHORITY_HOST).toBe('https://login.microsoftonline.com/');
      expect(container.volumeMounts).toContainEqual(
        expect.objectContaining({
          name: 'azure-identity-token',
          mountPath: '/var/run/secrets/azure/tokens',
          readOnly: true,
        }),
      );
    }
    const app = read.spec?.containers?.find((c) => c.name === 'app');
    expect(app?.env?.find((e) => e.name === 'AZURE_CLIENT_ID')?.value).toBe('set-by-user');
    const metrics = read.spec?.containers?.find((c) => c.name === 'metrics');
    expect(metrics?.env?.find((e) => e.name === 'AZURE_CLIENT_ID')?.value).toBe(CLIENT_ID);
    // The native sidecar stays a sidecar; the apiserver's own service-account volume is intact.
    expect(read.spec?.initContainers?.find((c) => c.name === 'proxy')?.restartPolicy).toBe('Always');
    expect(read.spec?.volumes?.some((v) => v.name.startsWith('kube-api-access-'))).toBe(true);
  });

  it('refuses a pod whose token expiration is out of bounds, naming the bounds', async () => {
    const namespace = await optedInNamespace('inject');
    await bindServiceAccount(namespace, 'orders-api');
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'orders-api' } } });
    const body = pod('short', 'orders-api');
    body.metadata!.annotations = { 'azure.workload.identity/service-account-token-expiration': '60' };
    await expect(core.createNamespacedPod({ namespace, body })).rejects.toMatchObject({
      body: expect.stringMatching(/3600.*86400/),
    });
  });

  it('gives a dry-run pod the same patch', async () => {
    const namespace = await optedInNamespace('label');
    await bindServiceAccount(namespace, 'orders-api');
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'orders-api' } } });
    const dry = await core.createNamespacedPod({ namespace, body: pod('dry', 'orders-api'), dryRun: 'All' });
    expect(dry.metadata?.labels?.['azure.workload.identity/use']).toBe('true');
  });
});
