import { describe, expect, it } from 'vitest';
import { namespaceFacts } from '../../../src/webhook/policy/namespace.ts';
import { mutateServiceAccount } from '../../../src/webhook/policy/service-account.ts';
import type {
  IdentityBinding,
  NamespaceFacts,
  PatchOperation,
  ServiceAccountPolicyInput,
} from '../../../src/webhook/policy/types.ts';
import { applyPatch, changedLeaves, deepFreeze } from './apply-patch.ts';

const CLIENT = 'azure.workload.identity/client-id';
const TENANT = 'azure.workload.identity/tenant-id';
const BOUND_CLIENT = 'aaaaaaaa-0000-0000-0000-000000000001';
const BOUND_TENANT = 'tttttttt-0000-0000-0000-000000000001';
const DEFAULT_CLIENT = 'dddddddd-0000-0000-0000-000000000002';
const GLOBAL_TENANT = 'gggggggg-0000-0000-0000-000000000003';

function namespace(annotations: Record<string, string> = {}): NamespaceFacts {
  return namespaceFacts({
    metadata: {
      name: 'team-a',
      annotations: { 'entra-access.io/workload-identity': 'enabled', ...annotations },
    },
  });
}
const notOptedIn = namespaceFacts({ metadata: { name: 'team-b' } });
const withDefault = namespace({ 'entra-access.io/client-id': DEFAULT_CLIENT });
const binding: IdentityBinding = { clientId: BOUND_CLIENT, tenantId: BOUND_TENANT, source: 'team-a/orders' };

function sa(metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'orders-api', ...metadata } };
}

interface Case {
  name: string;
  input: ServiceAccountPolicyInput;
  patch: PatchOperation[];
  annotationsAfter?: Record<string, string> | undefined;
  conflict?: { existing: string; wanted: string };
  /** Leaves of the input the patch is meant to change (JSON Pointers); nothing else may change. */
  changes?: string[];
}

const cases: Case[] = [
  {
    name: 'namespace not opted in: untouched',
    input: { serviceAccount: sa(), namespace: notOptedIn, binding, tenantId: GLOBAL_TENANT },
    patch: [],
  },
  {
    name: 'no binding and no namespace default: untouched',
    input: {
      serviceAccount: sa({ annotations: { x: 'y' } }),
      namespace: namespace(),
      tenantId: GLOBAL_TENANT,
    },
    patch: [],
    annotationsAfter: { x: 'y' },
  },
  {
    name: 'binding, no annotations map: the map is added whole with client-id and tenant-id',
    input: { serviceAccount: sa(), namespace: namespace(), binding, tenantId: GLOBAL_TENANT },
    patch: [
      { op: 'add', path: '/metadata/annotations', value: { [CLIENT]: BOUND_CLIENT, [TENANT]: BOUND_TENANT } },
    ],
    annotationsAfter: { [CLIENT]: BOUND_CLIENT, [TENANT]: BOUND_TENANT },
  },
  {
    name: 'binding, annotations map exists: keys added with escaped paths',
    input: {
      serviceAccount: sa({ annotations: { x: 'y' } }),
      namespace: namespace(),
      binding,
      tenantId: GLOBAL_TENANT,
    },
    patch: [
      { op: 'add', path: '/metadata/annotations/azure.workload.identity~1client-id', value: BOUND_CLIENT },
      { op: 'add', path: '/metadata/annotations/azure.workload.identity~1tenant-id', value: BOUND_TENANT },
    ],
    annotationsAfter: { x: 'y', [CLIENT]: BOUND_CLIENT, [TENANT]: BOUND_TENANT },
  },
  {
    name: 'binding with an empty tenant: the operator tenant is used',
    input: {
      serviceAccount: sa(),
      namespace: namespace(),
      binding: { ...binding, tenantId: '' },
      tenantId: GLOBAL_TENANT,
    },
    patch: [
      {
        op: 'add',
        path: '/metadata/annotations',
        value: { [CLIENT]: BOUND_CLIENT, [TENANT]: GLOBAL_TENANT },
      },
    ],
  },
  {
    name: 'namespace default client id, with the operator tenant',
    input: { serviceAccount: sa(), namespace: withDefault, tenantId: GLOBAL_TENANT },
    patch: [
      {
        op: 'add',
        path: '/metadata/annotations',
        value: { [CLIENT]: DEFAULT_CLIENT, [TENANT]: GLOBAL_TENANT },
      },
    ],
  },
  {
    name: 'binding wins over the namespace default',
    input: { serviceAccount: sa(), namespace: withDefault, binding, tenantId: GLOBAL_TENANT },
    patch: [
      { op: 'add', path: '/metadata/annotations', value: { [CLIENT]: BOUND_CLIENT, [TENANT]: BOUND_TENANT } },
    ],
  },
  {
    name: 'no tenant anywhere: client-id only, never an empty tenant-id',
    input: { serviceAccount: sa(), namespace: withDefault, tenantId: '' },
    patch: [{ op: 'add', path: '/metadata/annotations', value: { [CLIENT]: DEFAULT_CLIENT } }],
    annotationsAfter: { [CLIENT]: DEFAULT_CLIENT },
  },
  {
    name: 'already annotated as wanted: no patch',
    input: {
      serviceAccount: sa({ annotations: { [CLIENT]: BOUND_CLIENT, [TENANT]: BOUND_TENANT } }),
      namespace: namespace(),
      binding,
      tenantId: GLOBAL_TENANT,
    },
    patch: [],
  },
  {
    name: "the user's tenant-id is kept",
    input: {
      serviceAccount: sa({ annotations: { [TENANT]: 'users-tenant' } }),
      namespace: namespace(),
      binding,
      tenantId: GLOBAL_TENANT,
    },
    patch: [
      { op: 'add', path: '/metadata/annotations/azure.workload.identity~1client-id', value: BOUND_CLIENT },
    ],
    annotationsAfter: { [TENANT]: 'users-tenant', [CLIENT]: BOUND_CLIENT },
  },
  {
    name: 'a different client-id set by hand: conflict reported, nothing overwritten or added',
    input: {
      serviceAccount: sa({ annotations: { [CLIENT]: 'users-client' } }),
      namespace: namespace(),
      binding,
      tenantId: GLOBAL_TENANT,
    },
    patch: [],
    annotationsAfter: { [CLIENT]: 'users-client' },
    conflict: { existing: 'users-client', wanted: BOUND_CLIENT },
  },
  {
    name: 'a different client-id against the namespace default: conflict too',
    input: {
      serviceAccount: sa({ annotations: { [CLIENT]: 'users-client' } }),
      namespace: withDefault,
      tenantId: GLOBAL_TENANT,
    },
    patch: [],
    conflict: { existing: 'users-client', wanted: DEFAULT_CLIENT },
  },
  {
    name: 'the same client-id set by hand: no conflict, tenant-id added',
    input: {
      serviceAccount: sa({ annotations: { [CLIENT]: BOUND_CLIENT } }),
      namespace: namespace(),
      binding,
      tenantId: GLOBAL_TENANT,
    },
    patch: [
      { op: 'add', path: '/metadata/annotations/azure.workload.identity~1tenant-id', value: BOUND_TENANT },
    ],
  },
  {
    name: 'a blank client-id counts as unset and is filled',
    input: {
      serviceAccount: sa({ annotations: { [CLIENT]: '' } }),
      namespace: namespace(),
      binding,
      tenantId: GLOBAL_TENANT,
    },
    patch: [
      { op: 'add', path: '/metadata/annotations/azure.workload.identity~1client-id', value: BOUND_CLIENT },
      { op: 'add', path: '/metadata/annotations/azure.workload.identity~1tenant-id', value: BOUND_TENANT },
    ],
    changes: ['/metadata/annotations/azure.workload.identity~1client-id'],
  },
  {
    name: 'a blank tenant-id counts as unset and is filled',
    input: {
      serviceAccount: sa({ annotations: { [CLIENT]: BOUND_CLIENT, [TENANT]: ' ' } }),
      namespace: namespace(),
      binding,
      tenantId: GLOBAL_TENANT,
    },
    patch: [
      { op: 'add', path: '/metadata/annotations/azure.workload.identity~1tenant-id', value: BOUND_TENANT },
    ],
    changes: ['/metadata/annotations/azure.workload.identity~1tenant-id'],
  },
];

describe('mutateServiceAccount', () => {
  it.each(cases)('$name', ({ input, patch, annotationsAfter, conflict, changes = [] }) => {
    deepFreeze(input);
    const result = mutateServiceAccount(input);
    expect(result.patch).toEqual(patch);
    expect(result.conflict).toEqual(conflict);
    if (conflict) {
      expect(result.warnings).toHaveLength(1);
      expect(result.warnings[0]).toContain(conflict.existing);
      expect(result.warnings[0]).toContain(conflict.wanted);
      expect(result.warnings[0]).toContain('orders-api');
    } else {
      expect(result.warnings).toEqual([]);
    }
    expect(result.patch.every((operation) => operation.op === 'add')).toBe(true);

    const after = applyPatch(input.serviceAccount, result.patch);
    expect(changedLeaves(input.serviceAccount, after)).toEqual(changes);
    if (annotationsAfter !== undefined) {
      expect((after.metadata as Record<string, unknown>).annotations).toEqual(annotationsAfter);
    }
    // Reinvocation (or an UPDATE of the mutated object) changes nothing.
    const again = mutateServiceAccount(deepFreeze({ ...input, serviceAccount: after }));
    expect(again.patch).toEqual([]);
  });
});
