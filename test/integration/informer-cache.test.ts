// The webhook's read cache against the real apiserver: served from the informer once synced,
// a live GET on a miss (a ServiceAccount created together with its Deployment), undefined only
// for a real 404, and any other failure (here: RBAC) thrown rather than taken for "absent".
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InformerCache } from '../../src/kube/informer-cache.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { adminKubeConfig, harnessInfo, uniqueName } from '../harness/context.ts';

const harness = harnessInfo();

function serviceAccountCache(kc: k8s.KubeConfig): InformerCache<k8s.V1ServiceAccount> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return new InformerCache<k8s.V1ServiceAccount>(kc, {
    kind: 'ServiceAccount',
    path: '/api/v1/serviceaccounts',
    list: () => core.listServiceAccountForAllNamespaces(),
    get: (name, namespace) => core.readNamespacedServiceAccount({ name, namespace: namespace ?? '' }),
    logger: createLogger('error'),
  });
}

describe.skipIf(!harness)('InformerCache', () => {
  const namespace = uniqueName('cache');
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  const caches: InformerCache<k8s.V1ServiceAccount>[] = [];

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'listed' } } });
  });
  afterAll(async () => {
    for (const cache of caches) await cache.stop();
    await core?.deleteNamespace({ name: namespace }).catch(() => {});
  });

  it('syncs, then serves listed and watched objects from the cache', async () => {
    const cache = serviceAccountCache(kc);
    caches.push(cache);
    expect(cache.synced).toBe(false);
    await cache.start();
    expect(cache.synced).toBe(true);
    expect(cache.list(namespace).map((sa) => sa.metadata?.name)).toContain('listed');

    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'watched' } } });
    const deadline = Date.now() + 5000;
    while (!cache.list(namespace).some((sa) => sa.metadata?.name === 'watched') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(cache.list(namespace).map((sa) => sa.metadata?.name)).toContain('watched');
  });

  it('caches listed and watched objects without managedFields or the last-applied annotation', async () => {
    const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';
    const body = (name: string) => ({
      metadata: { name, labels: { team: 'a' }, annotations: { keep: 'yes', [lastApplied]: '{"x":1}' } },
    });
    await core.createNamespacedServiceAccount({ namespace, body: body('stripped-listed') });
    const cache = serviceAccountCache(kc);
    caches.push(cache);
    await cache.start();
    await core.createNamespacedServiceAccount({ namespace, body: body('stripped-watched') });
    const deadline = Date.now() + 5000;
    while (
      !cache.list(namespace).some((sa) => sa.metadata?.name === 'stripped-watched') &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const name of ['stripped-listed', 'stripped-watched']) {
      const cached = await cache.get(name, namespace);
      expect(cached?.metadata?.name).toBe(name);
      expect(cached?.metadata?.managedFields).toBeUndefined();
      expect(cached?.metadata?.annotations).toEqual({ keep: 'yes' });
      expect(cached?.metadata?.labels).toEqual({ team: 'a' });
      expect(cached?.metadata?.uid).toBeTruthy();
      expect(cached?.metadata?.resourceVersion).toBeTruthy();
    }
    // The apiserver does track them: only the cache drops them.
    const live = await core.readNamespacedServiceAccount({ name: 'stripped-listed', namespace });
    expect(live.metadata?.managedFields?.length).toBeGreaterThan(0);
  });

  it('falls back to a live GET on a miss, and answers undefined only for a 404', async () => {
    // Not started: every lookup is a miss, which is what a just-created object looks like.
    const cache = serviceAccountCache(kc);
    expect((await cache.get('listed', namespace))?.metadata?.name).toBe('listed');
    expect(await cache.get('does-not-exist', namespace)).toBeUndefined();
  });

  it('throws, rather than reporting "absent", when the live GET fails for another reason', async () => {
    const anonymous = new k8s.KubeConfig();
    anonymous.loadFromOptions({
      clusters: [{ name: 'h', server: harness!.kubernetes.url, caFile: harness!.caFile }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: 'h', cluster: 'h', user: 'anonymous' }],
      currentContext: 'h',
    });
    const cache = serviceAccountCache(anonymous);
    await expect(cache.get('listed', namespace)).rejects.toMatchObject({ code: 403 });
  });
});
