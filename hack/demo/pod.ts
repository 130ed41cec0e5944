// The app's pod, as a Deployment would create it: nothing about Azure in it, only where its
// database is. The apiserver calls
// the webhook, which adds the workload-identity label, env and token volume (inject mode). There
// is no kubelet, so the pod is admitted and stored, never run: the demo reads back what it got.
import type * as k8s from '@kubernetes/client-node';
import { TOKEN_VOLUME_NAME, WI_USE_LABEL } from '../../src/api/constants.ts';
import type { ConnectionStatus } from '../../src/api/types.ts';
import { DEMO } from './tenant.ts';

/**
 * The app's own variables, as docs/aks-guide.md's Deployment sets them from the access resource's
 * status.connection: the PG* names libpq and most drivers read, and PGTOKENSCOPE for the token.
 */
export function connectionEnv(connection: ConnectionStatus): k8s.V1EnvVar[] {
  return [
    { name: 'PGHOST', value: connection.host ?? '' },
    { name: 'PGPORT', value: String(connection.port ?? 5432) },
    { name: 'PGDATABASE', value: connection.database ?? '' },
    { name: 'PGUSER', value: connection.user ?? '' },
    { name: 'PGTOKENSCOPE', value: connection.tokenScope ?? '' },
  ];
}

/** The app's pod in `namespace`, running as `serviceAccount`, with the connection in its env. */
export async function createAppPod(
  core: k8s.CoreV1Api,
  connection: ConnectionStatus,
  namespace: string = DEMO.namespace,
  serviceAccount: string = DEMO.serviceAccount,
): Promise<k8s.V1Pod> {
  return core.createNamespacedPod({
    namespace,
    body: {
      metadata: { generateName: `${serviceAccount}-`, labels: { app: serviceAccount } },
      spec: {
        serviceAccountName: serviceAccount,
        containers: [
          { name: 'api', image: 'registry.example/orders-api:1.0', env: connectionEnv(connection) },
        ],
      },
    },
  });
}

/** What the webhook gave the pod; throws when the workload-identity part is missing. */
export function describeInjection(pod: k8s.V1Pod): string[] {
  const container = pod.spec?.containers[0];
  const volume = pod.spec?.volumes?.find((v) => v.name === TOKEN_VOLUME_NAME);
  const mount = container?.volumeMounts?.find((m) => m.name === TOKEN_VOLUME_NAME);
  const source = volume?.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken;
  const env = (container?.env ?? []).filter((e) => e.name.startsWith('AZURE_'));
  if (pod.metadata?.labels?.[WI_USE_LABEL] !== 'true')
    throw new Error(`pod has no ${WI_USE_LABEL}=true label`);
  if (!source || !mount) throw new Error(`pod has no ${TOKEN_VOLUME_NAME} projected volume and mount`);
  if (env.length < 4) throw new Error(`pod got ${env.length} AZURE_* env vars, expected 4`);
  const labels = Object.entries(pod.metadata?.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  return [
    `labels: ${labels.join(', ')}`,
    ...env.map((e) => `env ${e.name}=${e.value}`),
    `volume ${TOKEN_VOLUME_NAME}: serviceAccountToken audience ${source.audience}, ${source.expirationSeconds}s, path ${source.path}`,
    `mount: ${mount.mountPath} (readOnly: ${mount.readOnly === true})`,
  ];
}
