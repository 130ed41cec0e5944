// The Kubernetes client: --kubeconfig, else $KUBECONFIG (both resolved by config.ts), else the
// in-cluster service account.
import * as k8s from '@kubernetes/client-node';

export function loadKubeConfig(kubeconfig: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromCluster();
  return kc;
}

/** The HTTP status of an error thrown by @kubernetes/client-node, if it carries one. */
export function statusOf(error: unknown): number | undefined {
  const e = error as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}
