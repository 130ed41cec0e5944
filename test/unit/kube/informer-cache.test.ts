import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { stripForCache } from '../../../src/kube/informer-cache.ts';

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
