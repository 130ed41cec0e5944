// The informer caches the webhook and the controller read from, built in one place so both roles
// watch the same paths with the same list and live-GET calls.
import * as k8s from '@kubernetes/client-node';
import { ACCESS_PLURAL, GROUP, SERVER_PLURAL, VERSION } from '../api/constants.ts';
import type { EntraDatabaseAccess, EntraDatabaseServer } from '../api/types.ts';
import type { Logger } from '../observability/logger.ts';
import { InformerCache } from './informer-cache.ts';

export function namespaceCache(kc: k8s.KubeConfig, logger: Logger): InformerCache<k8s.V1Namespace> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return new InformerCache<k8s.V1Namespace>(kc, {
    kind: 'Namespace',
    path: '/api/v1/namespaces',
    list: () => core.listNamespace(),
    get: (name) => core.readNamespace({ name }),
    logger,
  });
}

export function serviceAccountCache(kc: k8s.KubeConfig, logger: Logger): InformerCache<k8s.V1ServiceAccount> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return new InformerCache<k8s.V1ServiceAccount>(kc, {
    kind: 'ServiceAccount',
    path: '/api/v1/serviceaccounts',
    list: () => core.listServiceAccountForAllNamespaces(),
    get: (name, namespace) => core.readNamespacedServiceAccount({ name, namespace: namespace ?? '' }),
    logger,
  });
}

export function accessCache(kc: k8s.KubeConfig, logger: Logger): InformerCache<EntraDatabaseAccess> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const api = { group: GROUP, version: VERSION, plural: ACCESS_PLURAL };
  return new InformerCache<EntraDatabaseAccess>(kc, {
    kind: 'EntraDatabaseAccess',
    path: `/apis/${GROUP}/${VERSION}/${ACCESS_PLURAL}`,
    list: () => custom.listClusterCustomObject(api) as Promise<k8s.KubernetesListObject<EntraDatabaseAccess>>,
    get: (name, namespace) =>
      custom.getNamespacedCustomObject({
        ...api,
        namespace: namespace ?? '',
        name,
      }) as Promise<EntraDatabaseAccess>,
    logger,
  });
}

export function serverCache(kc: k8s.KubeConfig, logger: Logger): InformerCache<EntraDatabaseServer> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const api = { group: GROUP, version: VERSION, plural: SERVER_PLURAL };
  return new InformerCache<EntraDatabaseServer>(kc, {
    kind: 'EntraDatabaseServer',
    path: `/apis/${GROUP}/${VERSION}/${SERVER_PLURAL}`,
    list: () => custom.listClusterCustomObject(api) as Promise<k8s.KubernetesListObject<EntraDatabaseServer>>,
    get: (name) => custom.getClusterCustomObject({ ...api, name }) as Promise<EntraDatabaseServer>,
    logger,
  });
}
