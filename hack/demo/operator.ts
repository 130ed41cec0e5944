// The operator as a cluster runs it: one `entra-access run` process with both roles (webhook on
// every replica, controller behind the Lease), its webhook registered through a real
// MutatingWebhookConfiguration shaped like the chart's, and its own workload identity.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {
  DEFAULT_WEBHOOK_CONFIGURATION_NAME,
  NAMESPACE_OPT_IN_LABEL,
  NAMESPACE_WEBHOOK_PATH,
  OPT_IN_VALUE,
  POD_WEBHOOK_PATH,
  SERVICE_ACCOUNT_WEBHOOK_PATH,
} from '../../src/api/constants.ts';
import type { HarnessInfo } from '../../test/harness/harness.ts';
import { createCertificateAuthority, issueCertificate } from '../../test/harness/pki.ts';
import { freePort } from '../../test/harness/ports.ts';
import type { ManagedProcess } from '../../test/harness/processes.ts';
import { startOperatorProcess, writeOperatorToken } from '../../test/harness/scenario.ts';
import { StepFailure, waitFor } from './report.ts';

export interface RunningOperator {
  process: ManagedProcess;
  webhookPort: number;
  configurationName: string;
}

/**
 * The serving certificate the apiserver checks: the apiserver calls the webhook by URL on
 * 127.0.0.1 (there is no Service without a cluster network), so it names that address. This is
 * cert mode `external` (cert-manager's role played here); the caBundle is this CA.
 */
async function writeServingCertificate(certDir: string): Promise<string> {
  const ca = await createCertificateAuthority('entra-access demo webhook CA');
  const serving = await issueCertificate(ca, {
    commonName: 'entra-access-webhook',
    usage: 'server',
    ipAddresses: ['127.0.0.1'],
  });
  await mkdir(certDir, { recursive: true });
  await writeFile(join(certDir, 'tls.crt'), serving.certPem);
  await writeFile(join(certDir, 'tls.key'), serving.keyPem, { mode: 0o600 });
  return Buffer.from(ca.certPem).toString('base64');
}

/** The chart's three webhooks (charts/entra-access/templates/mutatingwebhookconfiguration.yaml), by URL. */
function webhookConfiguration(
  name: string,
  base: string,
  caBundle: string,
  releaseNamespace: string,
): k8s.V1MutatingWebhookConfiguration {
  const notSystem = {
    key: 'kubernetes.io/metadata.name',
    operator: 'NotIn',
    values: ['kube-system', releaseNamespace],
  };
  const optedIn = { matchLabels: { [NAMESPACE_OPT_IN_LABEL]: OPT_IN_VALUE }, matchExpressions: [notSystem] };
  const hook = (
    kind: string,
    path: string,
    resource: string,
    operations: string[],
    failurePolicy: 'Fail' | 'Ignore',
    namespaceSelector: k8s.V1LabelSelector,
  ): k8s.V1MutatingWebhook => ({
    name: `${kind}.entra-access.io`,
    admissionReviewVersions: ['v1'],
    clientConfig: { url: `${base}${path}`, caBundle },
    failurePolicy,
    matchPolicy: 'Equivalent',
    namespaceSelector,
    reinvocationPolicy: 'IfNeeded',
    rules: [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations,
        resources: [resource],
        scope: resource === 'namespaces' ? 'Cluster' : 'Namespaced',
      },
    ],
    sideEffects: 'NoneOnDryRun',
    timeoutSeconds: 5,
  });
  return {
    metadata: { name },
    webhooks: [
      hook('pods', POD_WEBHOOK_PATH, 'pods', ['CREATE'], 'Fail', optedIn),
      hook(
        'serviceaccounts',
        SERVICE_ACCOUNT_WEBHOOK_PATH,
        'serviceaccounts',
        ['CREATE', 'UPDATE'],
        'Ignore',
        optedIn,
      ),
      hook('namespaces', NAMESPACE_WEBHOOK_PATH, 'namespaces', ['CREATE', 'UPDATE'], 'Ignore', {
        matchExpressions: [notSystem],
      }),
    ],
  };
}

/** Starts the operator and returns once its webhook is ready and its controller leads. */
export async function startOperator(info: HarnessInfo, kubeConfig: k8s.KubeConfig): Promise<RunningOperator> {
  const dir = join(info.dir, 'operator');
  const certDir = join(dir, 'webhook-certs');
  const caBundle = await writeServingCertificate(certDir);
  const [webhookPort, healthPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const configurationName = DEFAULT_WEBHOOK_CONFIGURATION_NAME;
  await kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
    body: webhookConfiguration(
      configurationName,
      `https://127.0.0.1:${webhookPort}`,
      caBundle,
      info.azure.operator.namespace,
    ),
  });

  const tokenFile = await writeOperatorToken(info, kubeConfig, dir);
  const operator = await startOperatorProcess(info, {
    name: 'entra-access',
    logDir: dir,
    tokenFile,
    clusterName: 'demo',
    args: [
      '--bind-address=127.0.0.1',
      `--webhook-port=${webhookPort}`,
      `--health-port=${healthPort}`,
      `--metrics-port=${metricsPort}`,
      `--cert-dir=${certDir}`,
      '--cert-mode=external',
      `--webhook-configuration-name=${configurationName}`,
      '--injection-mode=inject',
      `--tenant-id=${info.azure.tenantId}`,
      '--log-level=info',
    ],
  });
  try {
    // /readyz: the serving certificate is loaded and the webhook's caches have synced.
    await waitFor(
      () =>
        fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
          (r) => r.status,
          () => 0,
        ),
      (status) => status === 200,
      (status) => `webhook not ready (/readyz ${status})`,
      30_000,
    );
    // The controller logs this once it holds the Lease and its informers have synced.
    await waitFor(
      () => readFile(operator.logFile, 'utf8').catch(() => ''),
      (log) => log.includes('controller running'),
      () => 'controller not running (no "controller running" in its log)',
      30_000,
    );
  } catch (error) {
    const tail = operator.tail();
    await operator.stop();
    throw new StepFailure((error as Error).message, tail);
  }
  return { process: operator, webhookPort, configurationName };
}
