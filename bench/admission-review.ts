// The AdmissionReview the webhook benchmarks send: a pod as a Deployment's ReplicaSet creates it
// (generateName, ownerReferences, pod-template-hash label, the kube-api-access projected volume
// the ServiceAccount admission plugin adds before webhooks run), with 3 containers, 1 init
// container and 1 native sidecar (an init container with restartPolicy Always), resources, probes
// and env. Also the check that an answer is the correct patch for it, not just a 200.
import {
  ENV_AZURE_CLIENT_ID,
  TOKEN_VOLUME_NAME,
  WI_CLIENT_ID_ANNOTATION,
  WI_TENANT_ID_ANNOTATION,
  WI_USE_LABEL,
  WI_USE_VALUE,
} from '../src/api/constants.ts';
import type { PatchOperation } from '../src/webhook/policy/types.ts';
import { applyPatch } from '../test/unit/webhook/apply-patch.ts';

export const BENCH_SERVICE_ACCOUNT = 'orders-api';
export const BENCH_CLIENT_ID = '6f1e3c52-7a3b-4c0e-9d1a-2b8f4e5a6c7d';
export const BENCH_TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';

/** Annotations that make the benchmark's ServiceAccount workload-identity enabled. */
export const BENCH_SA_ANNOTATIONS = {
  [WI_CLIENT_ID_ANNOTATION]: BENCH_CLIENT_ID,
  [WI_TENANT_ID_ANNOTATION]: BENCH_TENANT_ID,
};

const probe = (path: string, port: number) => ({
  httpGet: { path, port, scheme: 'HTTP' },
  initialDelaySeconds: 5,
  periodSeconds: 10,
  timeoutSeconds: 1,
  successThreshold: 1,
  failureThreshold: 3,
});

const resources = (cpu: string, memory: string) => ({
  requests: { cpu, memory },
  limits: { memory },
});

const apiAccessMount = {
  name: 'kube-api-access-7xk2p',
  readOnly: true,
  mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
};

function container(name: string, image: string, port: number, extra: Record<string, unknown> = {}) {
  return {
    name,
    image,
    ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
    env: [
      { name: 'LOG_LEVEL', value: 'info' },
      { name: 'PGHOST', value: 'orders-pg.postgres.database.azure.com' },
      { name: 'PGDATABASE', value: 'orders' },
      { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
      {
        name: 'POD_NAMESPACE',
        valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
      },
    ],
    resources: resources('100m', '256Mi'),
    livenessProbe: probe('/healthz', port),
    readinessProbe: probe('/readyz', port),
    volumeMounts: [apiAccessMount],
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
    securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, readOnlyRootFilesystem: true },
    ...extra,
  };
}

/** The pod a ReplicaSet of Deployment `orders-api` sends for admission. */
export function benchPod(namespace: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'orders-api-7d9f8c6b5-',
      namespace,
      labels: { app: 'orders-api', 'app.kubernetes.io/part-of': 'orders', 'pod-template-hash': '7d9f8c6b5' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-20T09:12:44Z' },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: 'orders-api-7d9f8c6b5',
          uid: '0b6e2d7e-3a1f-4a57-9c55-1c1d2f0f5e11',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      serviceAccountName: BENCH_SERVICE_ACCOUNT,
      serviceAccount: BENCH_SERVICE_ACCOUNT,
      initContainers: [
        container('migrate', 'contoso.azurecr.io/orders/migrate:1.42.0', 8081, {
          command: ['/app/migrate', '--up'],
          livenessProbe: undefined,
          readinessProbe: undefined,
        }),
        // Native sidecar: the field our patches must never drop.
        container('log-shipper', 'contoso.azurecr.io/platform/fluent-bit:3.1', 2020, {
          restartPolicy: 'Always',
          resources: resources('50m', '64Mi'),
        }),
      ],
      containers: [
        container('app', 'contoso.azurecr.io/orders/api:1.42.0', 8080),
        container('metrics-exporter', 'contoso.azurecr.io/platform/exporter:0.9', 9100, {
          resources: resources('20m', '32Mi'),
        }),
        container('cache-proxy', 'contoso.azurecr.io/platform/envoy:1.31', 15000, {
          args: ['--config-path', '/etc/envoy/envoy.yaml'],
          resources: resources('50m', '128Mi'),
        }),
      ],
      volumes: [
        {
          name: 'kube-api-access-7xk2p',
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              {
                downwardAPI: {
                  items: [
                    {
                      path: 'namespace',
                      fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' },
                    },
                  ],
                },
              },
            ],
          },
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      schedulerName: 'default-scheduler',
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      tolerations: [
        {
          key: 'node.kubernetes.io/not-ready',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
        {
          key: 'node.kubernetes.io/unreachable',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
      ],
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      priority: 0,
    },
    status: {},
  };
}

export const BENCH_UID = '9b0c5a0e-8f0e-4c5e-a2d6-5b3c7a1e4f20';

/** The AdmissionReview request body (JSON text), as kube-apiserver sends it for a ReplicaSet's pod. */
export function benchAdmissionReview(namespace: string, uid = BENCH_UID): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        uid: '3f0f2e51-0a5e-4a70-8d43-0f5e8f0c2a11',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object: benchPod(namespace),
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  });
}

/** `why` the answer is wrong for the bench pod in `mode`, or undefined when it is right. */
export function checkAdmissionAnswer(
  body: string,
  namespace: string,
  mode: 'label' | 'inject',
  uid = BENCH_UID,
): string | undefined {
  let review: {
    response?: { uid?: string; allowed?: boolean; patchType?: string; patch?: string; status?: unknown };
  };
  try {
    review = JSON.parse(body);
  } catch {
    return `not JSON: ${body.slice(0, 200)}`;
  }
  const response = review.response;
  if (!response) return `no response: ${body.slice(0, 200)}`;
  if (response.uid !== uid) return `uid ${response.uid} is not ${uid}`;
  if (response.allowed !== true) return `not allowed: ${JSON.stringify(response.status)}`;
  if (response.patchType !== 'JSONPatch' || !response.patch) return 'no JSONPatch';
  const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as PatchOperation[];
  if (patch.some((op) => op.op === 'remove')) return 'the patch removes something';
  const pod = applyPatch(benchPod(namespace), patch) as {
    metadata: { labels: Record<string, string> };
    spec: {
      initContainers: Array<{
        name: string;
        restartPolicy?: string;
        env?: Array<{ name: string; value?: string }>;
      }>;
      containers: Array<{ env?: Array<{ name: string; value?: string }> }>;
      volumes: Array<{ name: string }>;
    };
  };
  if (pod.metadata.labels[WI_USE_LABEL] !== WI_USE_VALUE) return `no ${WI_USE_LABEL} label`;
  if (pod.spec.initContainers[1]?.restartPolicy !== 'Always') return 'the native sidecar lost restartPolicy';
  const clientIds = [...pod.spec.initContainers, ...pod.spec.containers].map(
    (c) => c.env?.find((e) => e.name === ENV_AZURE_CLIENT_ID)?.value,
  );
  const hasVolume = pod.spec.volumes.some((v) => v.name === TOKEN_VOLUME_NAME);
  if (mode === 'inject') {
    if (clientIds.some((id) => id !== BENCH_CLIENT_ID)) return 'a container lacks AZURE_CLIENT_ID';
    if (!hasVolume) return `no ${TOKEN_VOLUME_NAME} volume`;
  } else if (clientIds.some((id) => id !== undefined) || hasVolume) {
    return 'label mode injected env or volumes';
  }
  return undefined;
}
