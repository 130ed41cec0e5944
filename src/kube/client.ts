// The Kubernetes client: --kubeconfig, else $KUBECONFIG (both resolved by config.ts), else the
// in-cluster service account.
import { createHash } from 'node:crypto';
import type { AgentOptions } from 'node:https';
import * as k8s from '@kubernetes/client-node';

export function loadKubeConfig(kubeconfig: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromCluster();
  return shareDispatchers(kc);
}

/** What shareDispatchers replaces: KubeConfig's (private in the typings) per-request factory. */
type DispatcherFactory = (
  cluster: k8s.Cluster | null,
  options: AgentOptions,
) => { close(): Promise<void> } | undefined;

/**
 * client-node 2.x builds a new undici Agent for every API request and never closes it: every
 * request then opens its own TLS connection (a new OpenSSL context with the cluster CA, a full
 * handshake), and the abandoned keep-alive sockets and contexts pile up in native memory (in the
 * scale benchmark, 200 resources left 72 idle sockets to the apiserver and +60 MB of malloc'd
 * memory, growing with the number of requests). This makes every request
 * of `kc` (API calls and watches) share one Agent, so connections are pooled and reused, as
 * client-go does. The Agent is rebuilt (and the old one closed, once its requests end) only when
 * the TLS settings change, e.g. a rotated client certificate.
 */
export function shareDispatchers(kc: k8s.KubeConfig): k8s.KubeConfig {
  const target = kc as unknown as { createDispatcher?: DispatcherFactory };
  const original = target.createDispatcher;
  if (typeof original !== 'function') return kc; // a client-node without it: nothing to share
  let current: { key: string; dispatcher: ReturnType<DispatcherFactory> } | undefined;
  target.createDispatcher = (cluster, options) => {
    const key = createHash('sha256')
      .update(JSON.stringify([cluster?.name ?? '', kc.createDispatcherOptions(cluster, options)]))
      .digest('hex');
    if (current?.key === key) return current.dispatcher;
    const previous = current?.dispatcher;
    current = { key, dispatcher: original.call(kc, cluster, options) };
    // close() lets requests under way (a watch) finish, and refuses new ones.
    previous?.close().catch(() => {});
    return current.dispatcher;
  };
  return kc;
}

/** The HTTP status of an error thrown by @kubernetes/client-node, if it carries one. */
export function statusOf(error: unknown): number | undefined {
  const e = error as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}
