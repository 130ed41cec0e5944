// What the webhook needs to know besides the object under admission — the namespace, the pod's
// ServiceAccount, the EntraDatabaseAccess naming it, whether the AKS add-on's webhook exists —
// served from informer caches, with a live GET on a miss.
import * as k8s from '@kubernetes/client-node';
import { BindingIndex, bindingOf } from '../api/binding-index.ts';
import { ACCESS_KIND, AZURE_WI_WEBHOOK_CONFIGURATION_NAME } from '../api/constants.ts';
import type { EntraDatabaseAccess } from '../api/types.ts';
import { accessCache, namespaceCache, serviceAccountCache } from '../kube/caches.ts';
import { statusOf } from '../kube/client.ts';
import type { Logger } from '../observability/logger.ts';
import type { IdentityBinding } from './policy/types.ts';

export interface Lookups {
  namespace(name: string): Promise<k8s.V1Namespace | undefined>;
  serviceAccount(namespace: string, name: string): Promise<k8s.V1ServiceAccount | undefined>;
  /** The identity an EntraDatabaseAccess binds to this service account, once resolved. */
  binding(namespace: string, serviceAccountName: string): IdentityBinding | undefined;
  /** Whether the AKS workload-identity add-on's webhook configuration exists (for --injection-mode auto). */
  azureWorkloadIdentityWebhookExists(): Promise<boolean>;
  readonly synced: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const ADD_ON_CHECK_TTL_MS = 60_000;

/** The identity the webhook gives a ServiceAccount, from the binding index. Pure. */
export function identityBindingFor(
  bindings: BindingIndex,
  namespace: string,
  serviceAccountName: string,
): IdentityBinding | undefined {
  const chosen = bindings.resolvedFor(namespace, serviceAccountName);
  if (!chosen?.resolved) return undefined;
  return {
    clientId: chosen.resolved.clientId,
    tenantId: chosen.resolved.tenantId,
    source: `${chosen.namespace}/${chosen.name}`,
  };
}

export function createLookups(kubeConfig: k8s.KubeConfig, logger: Logger): Lookups {
  const admission = kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);

  const namespaces = namespaceCache(kubeConfig, logger);
  const serviceAccounts = serviceAccountCache(kubeConfig, logger);
  const accesses = accessCache(kubeConfig, logger);
  // Every kind that binds a ServiceAccount feeds the same index (docs/design.md §5.4).
  const bindings = new BindingIndex();
  const index = (access: EntraDatabaseAccess) => {
    const binding = bindingOf(access, ACCESS_KIND);
    if (binding) bindings.set(binding);
    else bindings.delete(ACCESS_KIND, access.metadata.namespace ?? '', access.metadata.name ?? '');
  };
  accesses.on('add', index);
  accesses.on('update', index);
  accesses.on('delete', (access) =>
    bindings.delete(ACCESS_KIND, access.metadata.namespace ?? '', access.metadata.name ?? ''),
  );

  let addOn: { exists: boolean; checkedAt: number } | undefined;
  const caches = [namespaces, serviceAccounts, accesses];
  return {
    namespace: (name) => namespaces.get(name),
    serviceAccount: (namespace, name) => serviceAccounts.get(name, namespace),
    binding: (namespace, serviceAccountName) => identityBindingFor(bindings, namespace, serviceAccountName),
    async azureWorkloadIdentityWebhookExists() {
      if (addOn && Date.now() - addOn.checkedAt < ADD_ON_CHECK_TTL_MS) return addOn.exists;
      try {
        await admission.readMutatingWebhookConfiguration({ name: AZURE_WI_WEBHOOK_CONFIGURATION_NAME });
        addOn = { exists: true, checkedAt: Date.now() };
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
        addOn = { exists: false, checkedAt: Date.now() };
      }
      return addOn.exists;
    },
    get synced() {
      return caches.every((cache) => cache.synced);
    },
    async start() {
      await Promise.all(caches.map((cache) => cache.start()));
    },
    async stop() {
      await Promise.all(caches.map((cache) => cache.stop()));
    },
  };
}
