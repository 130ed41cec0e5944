import * as k8s from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InformerCache, stripForCache } from '../../../src/kube/informer-cache.ts';
import type { Logger } from '../../../src/observability/logger.ts';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

describe('stripForCache', () => {
  it('drops managedFields and the last-applied annotation, and keeps everything read elsewhere', () => {
    const object = {
      apiVersion: 'entra-access.io/v1alpha1',
      kind: 'EntraDatabaseAccess',
      metadata: {
        name: 'orders',
        namespace: 'team-a',
        uid: 'u-1',
        resourceVersion: '42',
        generation: 3,
        creationTimestamp: '2026-11-22T10:00:00Z',
        deletionTimestamp: '2026-11-22T11:00:00Z',
        finalizers: ['entra-access.io/cleanup'],
        labels: { 'entra-access.io/enabled': 'true' },
        annotations: {
          'entra-access.io/allowed-identities': '/subscriptions/x',
          [LAST_APPLIED]: '{"big":"json"}',
        },
        ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'y', uid: 'z' }],
        managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }],
      },
      spec: { serviceAccountName: 'app', serverRef: 'pg' },
      status: { identity: { clientId: 'c', tenantId: 't' }, conditions: [{ type: 'Ready', status: 'True' }] },
    };
    const expected = structuredClone(object) as { metadata: Record<string, unknown> };
    delete expected.metadata.managedFields;
    delete (expected.metadata.annotations as Record<string, string>)[LAST_APPLIED];

    const stripped = stripForCache(object as unknown as k8s.KubernetesObject);
    expect(stripped).toBe(object);
    expect(stripped).toEqual(expected);
    expect(stripped.metadata?.annotations).toEqual({
      'entra-access.io/allowed-identities': '/subscriptions/x',
    });
  });

  it('leaves objects without metadata, managedFields or annotations alone', () => {
    const status = { kind: 'Status', code: 410 } as k8s.KubernetesObject;
    expect(stripForCache(status)).toEqual({ kind: 'Status', code: 410 });
    const bare = { metadata: { name: 'n', resourceVersion: '1' } } as k8s.KubernetesObject;
    expect(stripForCache(bare)).toEqual({ metadata: { name: 'n', resourceVersion: '1' } });
  });
});

describe('InformerCache restarts', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  /** A cache whose list fails `failures` times, then succeeds; the watch is a stub (no I/O). */
  function cacheFailing(failures: number) {
    let done: ((error: unknown) => void) | undefined;
    vi.spyOn(k8s.Watch.prototype, 'watch').mockImplementation(async (_path, _query, _callback, onDone) => {
      done = onDone;
      return new AbortController();
    });
    const warn = vi.fn();
    const logger = { warn } as unknown as Logger;
    let lists = 0;
    const cache = new InformerCache<k8s.V1Namespace>(new k8s.KubeConfig(), {
      kind: 'Namespace',
      path: '/api/v1/namespaces',
      list: async () => {
        lists += 1;
        if (lists <= failures) throw new Error(`apiserver unavailable (${lists})`);
        return { items: [], metadata: { resourceVersion: '1' } };
      },
      get: async () => {
        throw new Error('not used');
      },
      logger,
    });
    return {
      cache,
      /** The restart delays logged so far. */
      delays: () => warn.mock.calls.map(([fields]) => (fields as { retryInMs: number }).retryInMs),
      /** Ends the running watch with `error`, as client-node does when the stream fails. */
      breakWatch: (error: unknown) => done?.(error),
    };
  }

  it('doubles the delay per failed list, 1 s up to 30 s, although client-node emits connect before each list', async () => {
    const { cache, delays } = cacheFailing(Number.POSITIVE_INFINITY);
    void cache.start();
    const expected = [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000];
    for (const delay of expected) await vi.advanceTimersByTimeAsync(delay);
    expect(delays()).toEqual([...expected, 30_000]);
    expect(cache.synced).toBe(false);
    await cache.stop();
  });

  it('starts over at 1 s once a restart has listed and is watching', async () => {
    const { cache, delays, breakWatch } = cacheFailing(3);
    const started = cache.start();
    await vi.advanceTimersByTimeAsync(1000 + 2000 + 4000);
    await started;
    expect(cache.synced).toBe(true);
    expect(delays()).toEqual([1000, 2000, 4000]);

    breakWatch(new Error('watch stream reset'));
    expect(delays()).toEqual([1000, 2000, 4000, 1000]);
    await cache.stop();
  });
});
