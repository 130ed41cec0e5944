// The binding index every cross-resource question goes through (src/api/binding-index.ts): what a
// resource binds as read from its spec and status, and the answers the index gives about shared
// ServiceAccounts, identities and federated credentials. Pure: bindings built from object bodies.
import { describe, expect, it } from 'vitest';
import {
  type Binding,
  type BindingFields,
  BindingIndex,
  bindingOf,
  cameFirst,
} from '../../../src/api/binding-index.ts';
import { ACCESS_KIND } from '../../../src/api/constants.ts';
import type { EntraDatabaseAccessStatus } from '../../../src/api/types.ts';
import { type AccessBody, accessBody, IDENTITY } from '../../support/controller-fakes.ts';

const X = IDENTITY;
const Y =
  '/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1';
const Z =
  '/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2';
/** X as ARM returns it: lower-cased segment names and resource names. */
const X_ARM_CASING = X.replace('resourceGroups', 'resourcegroups').replace(
  'Microsoft.ManagedIdentity/userAssignedIdentities',
  'microsoft.managedidentity/userassignedidentities',
);
const X_UPPER = X.toUpperCase();
const WORKLOAD_KIND = 'EntraWorkloadIdentity';

interface Spec {
  name?: string;
  namespace?: string;
  kind?: string;
  sa?: string;
  identity?: string;
  created?: number;
  deleting?: boolean;
  status?: EntraDatabaseAccessStatus;
}

/** The binding of an EntraDatabaseAccess (or another kind, same fields) built from its body. */
function binding(over: Spec = {}): Binding {
  const body: AccessBody = {
    name: over.name ?? 'a',
    namespace: over.namespace ?? 'apps',
    spec: { serviceAccountName: over.sa ?? 'app', identity: { resourceId: over.identity ?? X } },
    created: over.created ?? 1000,
    ...(over.deleting ? { deleting: true } : {}),
    ...(over.status ? { status: over.status } : {}),
  };
  const result = bindingOf(accessBody(body), over.kind ?? ACCESS_KIND);
  if (!result) throw new Error('test builder: bindingOf returned undefined');
  return result;
}

function indexOf(...bindings: Binding[]): BindingIndex {
  const index = new BindingIndex();
  for (const b of bindings) index.set(b);
  return index;
}

/** Binding keys, sorted: the index's lists have no promised order. */
const names = (list: readonly Binding[]) => list.map((b) => `${b.kind}/${b.namespace}/${b.name}`).sort();

describe('bindingOf', () => {
  it('reads identity, ServiceAccount, metadata, the resolved identity and every recorded FIC', () => {
    const object = accessBody({
      name: 'orders',
      namespace: 'shop',
      created: 5000,
      generation: 7,
      spec: { serviceAccountName: 'orders-sa', identity: { resourceId: X } },
      status: {
        identity: { resourceId: X, clientId: 'client-x', tenantId: 'tenant-1', principalId: 'p' },
        federatedCredential: {
          name: 'c_shop_orders-sa',
          issuer: 'https://issuer',
          subject: 'system:serviceaccount:shop:orders-sa',
          identityResourceId: X,
        },
        staleFederatedCredentials: [
          { identityResourceId: Y, name: 'c_shop_old', subject: 'system:serviceaccount:shop:old' },
          { identityResourceId: Z, name: 'c_shop_older' },
        ],
      },
    });
    expect(bindingOf(object, ACCESS_KIND)).toStrictEqual({
      kind: ACCESS_KIND,
      namespace: 'shop',
      name: 'orders',
      uid: 'uid-orders',
      generation: 7,
      createdAt: 5000,
      deleting: false,
      serviceAccountName: 'orders-sa',
      identityResourceId: X,
      resolved: { clientId: 'client-x', tenantId: 'tenant-1' },
      recorded: [
        { identityResourceId: X, name: 'c_shop_orders-sa', subject: 'system:serviceaccount:shop:orders-sa' },
        { identityResourceId: Y, name: 'c_shop_old', subject: 'system:serviceaccount:shop:old' },
        { identityResourceId: Z, name: 'c_shop_older' },
      ],
    });
  });

  it('takes the kind from the caller, not from the object', () => {
    expect(bindingOf(accessBody(), WORKLOAD_KIND)?.kind).toBe(WORKLOAD_KIND);
  });

  it('reads a deletion timestamp as deleting', () => {
    expect(bindingOf(accessBody({ deleting: true }), ACCESS_KIND)?.deleting).toBe(true);
    expect(bindingOf(accessBody(), ACCESS_KIND)?.deleting).toBe(false);
  });

  it('defaults uid, generation and createdAt when metadata lacks them; reads a string timestamp', () => {
    const bare: BindingFields = {
      metadata: { name: 'a', namespace: 'apps' },
      spec: { serviceAccountName: 'app', identity: { resourceId: X } },
    };
    expect(bindingOf(bare, ACCESS_KIND)).toStrictEqual({
      kind: ACCESS_KIND,
      namespace: 'apps',
      name: 'a',
      uid: '',
      generation: 0,
      createdAt: 0,
      deleting: false,
      serviceAccountName: 'app',
      identityResourceId: X,
      recorded: [],
    });
    const stamped: BindingFields = {
      ...bare,
      metadata: { ...bare.metadata, creationTimestamp: '2026-01-01T00:00:00Z', deletionTimestamp: 'x' },
    };
    expect(bindingOf(stamped, ACCESS_KIND)).toMatchObject({
      createdAt: Date.parse('2026-01-01T00:00:00Z'),
      deleting: true,
    });
  });

  it.each<{ case: string; status: EntraDatabaseAccessStatus; recorded: Binding['recorded'] }>([
    {
      case: 'the FIC in force on the identity it names, even when status.identity is another',
      status: { identity: { resourceId: Y }, federatedCredential: { name: 'f', identityResourceId: X } },
      recorded: [{ identityResourceId: X, name: 'f' }],
    },
    {
      case: 'the FIC in force without identityResourceId: on status.identity.resourceId',
      status: { identity: { resourceId: Y }, federatedCredential: { name: 'f', subject: 's' } },
      recorded: [{ identityResourceId: Y, name: 'f', subject: 's' }],
    },
    {
      case: 'the FIC in force on no identity at all: not recorded (nothing to find it by)',
      status: { federatedCredential: { name: 'f', subject: 's' } },
      recorded: [],
    },
    {
      case: 'the FIC in force without a name: not recorded',
      status: { identity: { resourceId: Y }, federatedCredential: { identityResourceId: X } },
      recorded: [],
    },
    {
      case: 'the spec identity is not a fallback for the FIC in force',
      status: { identity: { clientId: 'c' }, federatedCredential: { name: 'f' } },
      recorded: [],
    },
    {
      case: 'stale FICs after the one in force, each with its own identity; incomplete ones skipped',
      status: {
        federatedCredential: { name: 'now', identityResourceId: X },
        staleFederatedCredentials: [
          { identityResourceId: Y, name: 'old-y' },
          { identityResourceId: '', name: 'no-identity' },
          { identityResourceId: Z, name: '' },
          { identityResourceId: Z, name: 'old-z', subject: 'system:serviceaccount:apps:old' },
        ],
      },
      recorded: [
        { identityResourceId: X, name: 'now' },
        { identityResourceId: Y, name: 'old-y' },
        { identityResourceId: Z, name: 'old-z', subject: 'system:serviceaccount:apps:old' },
      ],
    },
    { case: 'no status: nothing recorded', status: {}, recorded: [] },
  ])('records $case', ({ status, recorded }) => {
    // toStrictEqual: a missing subject is absent, not `subject: undefined`.
    expect(bindingOf(accessBody({ status }), ACCESS_KIND)?.recorded).toStrictEqual(recorded);
  });

  it.each<{ case: string; status: EntraDatabaseAccessStatus; resolved: Binding['resolved'] }>([
    { case: 'no status.identity', status: {}, resolved: undefined },
    { case: 'an identity without clientId', status: { identity: { resourceId: X } }, resolved: undefined },
    { case: 'an empty clientId', status: { identity: { clientId: '', tenantId: 't' } }, resolved: undefined },
    {
      case: 'clientId without tenantId',
      status: { identity: { clientId: 'c' } },
      resolved: { clientId: 'c', tenantId: '' },
    },
    {
      case: 'clientId and tenantId',
      status: { identity: { clientId: 'c', tenantId: 't' } },
      resolved: { clientId: 'c', tenantId: 't' },
    },
  ])('resolved with $case', ({ status, resolved }) => {
    const b = bindingOf(accessBody({ status }), ACCESS_KIND);
    expect(b?.resolved).toStrictEqual(resolved);
    expect(b !== undefined && 'resolved' in b).toBe(resolved !== undefined);
  });

  const complete: BindingFields = {
    metadata: { name: 'a', namespace: 'apps' },
    spec: { serviceAccountName: 'app', identity: { resourceId: X } },
  };
  it.each<{ case: string; object: BindingFields }>([
    { case: 'no name', object: { ...complete, metadata: { namespace: 'apps' } } },
    { case: 'an empty name', object: { ...complete, metadata: { name: '', namespace: 'apps' } } },
    { case: 'no namespace', object: { ...complete, metadata: { name: 'a' } } },
    { case: 'no spec', object: { metadata: complete.metadata } },
    { case: 'no serviceAccountName', object: { ...complete, spec: { identity: { resourceId: X } } } },
    {
      case: 'an empty serviceAccountName',
      object: { ...complete, spec: { serviceAccountName: '', identity: { resourceId: X } } },
    },
    { case: 'no identity', object: { ...complete, spec: { serviceAccountName: 'app' } } },
    {
      case: 'no identity.resourceId',
      object: { ...complete, spec: { serviceAccountName: 'app', identity: {} } },
    },
  ])('is undefined for an object with $case', ({ object }) => {
    expect(bindingOf(object, ACCESS_KIND)).toBeUndefined();
  });

  it('binds the same object with every required field present', () => {
    expect(bindingOf(complete, ACCESS_KIND)).toMatchObject({
      name: 'a',
      namespace: 'apps',
      serviceAccountName: 'app',
    });
  });
});

describe('cameFirst', () => {
  it.each<{ case: string; a: Spec; b: Spec; first: boolean }>([
    { case: 'older wins', a: { created: 1000, name: 'z' }, b: { created: 2000, name: 'a' }, first: true },
    { case: 'newer loses', a: { created: 2000, name: 'a' }, b: { created: 1000, name: 'z' }, first: false },
    { case: 'tie: by name', a: { name: 'a' }, b: { name: 'b' }, first: true },
    {
      case: 'tie: by namespace before name',
      a: { namespace: 'a', name: 'z' },
      b: { namespace: 'b' },
      first: true,
    },
    { case: 'tie: by kind before namespace', a: { namespace: 'z' }, b: { kind: WORKLOAD_KIND }, first: true },
    { case: 'itself is not first', a: {}, b: {}, first: false },
  ])('$case', ({ a, b, first }) => {
    expect(cameFirst(binding(a), binding(b))).toBe(first);
  });
});

describe('BindingIndex: set, replace and delete keep every index right', () => {
  it('set returns undefined for a new binding and the replaced one otherwise', () => {
    const index = new BindingIndex();
    const first = binding();
    const second = binding({ sa: 'other' });
    expect(index.set(first)).toBeUndefined();
    expect(index.set(second)).toBe(first);
    expect(index.size).toBe(1);
    expect(index.get(ACCESS_KIND, 'apps', 'a')).toBe(second);
    expect(index.get(WORKLOAD_KIND, 'apps', 'a')).toBeUndefined();
  });

  it('keeps the same name of two kinds apart', () => {
    const index = indexOf(binding(), binding({ kind: WORKLOAD_KIND, identity: Y }));
    expect(index.size).toBe(2);
    expect(names(index.ofServiceAccount('apps', 'app'))).toEqual([
      `${ACCESS_KIND}/apps/a`,
      `${WORKLOAD_KIND}/apps/a`,
    ]);
    expect(index.delete(WORKLOAD_KIND, 'apps', 'a')?.identityResourceId).toBe(Y);
    expect(names(index.ofServiceAccount('apps', 'app'))).toEqual([`${ACCESS_KIND}/apps/a`]);
  });

  it.each<{ case: string; before: Spec; after: Spec; gone: { identity?: string; sa?: string } }>([
    {
      case: 'moves to another identity',
      before: { identity: X },
      after: { identity: Y },
      gone: { identity: X },
    },
    {
      case: 'moves to another ServiceAccount',
      before: { sa: 'app' },
      after: { sa: 'other' },
      gone: { sa: 'app' },
    },
    {
      case: 'stops recording a FIC on another identity',
      before: { status: { staleFederatedCredentials: [{ identityResourceId: Z, name: 'old' }] } },
      after: {},
      gone: { identity: Z },
    },
  ])('a binding that $case is no longer found under the old one', ({ before, after, gone }) => {
    // Another binding in the index, on an identity and ServiceAccount none of the cases leaves.
    const index = indexOf(
      binding(before),
      binding({ name: 'unrelated', namespace: 'elsewhere', identity: Y }),
    );
    const now = binding(after);
    index.set(now);
    if (gone.identity) {
      expect(names(index.onIdentity(gone.identity))).not.toContain(`${ACCESS_KIND}/apps/a`);
      expect(index.identities()).not.toContain(gone.identity.toLowerCase());
    }
    if (gone.sa) expect(index.ofServiceAccount('apps', gone.sa)).toEqual([]);
    expect(names(index.onIdentity(now.identityResourceId))).toContain(`${ACCESS_KIND}/apps/a`);
    expect(names(index.ofServiceAccount('apps', now.serviceAccountName))).toEqual([`${ACCESS_KIND}/apps/a`]);
    expect(index.size).toBe(2);
  });

  it('a replaced binding is found through the new object, not the old one', () => {
    const index = indexOf(binding({ status: { identity: { clientId: 'old' } } }));
    index.set(binding({ status: { identity: { clientId: 'new' } } }));
    expect(index.ofServiceAccount('apps', 'app').map((b) => b.resolved?.clientId)).toEqual(['new']);
    expect(index.onIdentity(X).map((b) => b.resolved?.clientId)).toEqual(['new']);
  });

  it('delete removes a binding from every index and returns it; an unknown one returns undefined', () => {
    const a = binding({ status: { staleFederatedCredentials: [{ identityResourceId: Y, name: 'old' }] } });
    const b = binding({ name: 'b' });
    const index = indexOf(a, b);
    expect(index.delete(ACCESS_KIND, 'apps', 'nope')).toBeUndefined();
    expect(index.delete(WORKLOAD_KIND, 'apps', 'a')).toBeUndefined();
    expect(index.delete(ACCESS_KIND, 'apps', 'a')).toBe(a);
    expect(index.size).toBe(1);
    expect(index.get(ACCESS_KIND, 'apps', 'a')).toBeUndefined();
    expect(names(index.ofServiceAccount('apps', 'app'))).toEqual([`${ACCESS_KIND}/apps/b`]);
    expect(names(index.onIdentity(X))).toEqual([`${ACCESS_KIND}/apps/b`]);
    expect(index.onIdentity(Y)).toEqual([]);
    expect(index.identities()).toEqual([X.toLowerCase()]);
    expect(index.delete(ACCESS_KIND, 'apps', 'a')).toBeUndefined();
  });
});

describe('BindingIndex: identity IDs compare case-insensitively (ARM)', () => {
  it.each([
    { case: 'as written', id: X },
    { case: "in ARM's casing", id: X_ARM_CASING },
    { case: 'upper-cased', id: X_UPPER },
    { case: 'with surrounding blanks', id: ` ${X} ` },
  ])('onIdentity finds bindings of X asked $case', ({ id }) => {
    const index = indexOf(
      binding({ name: 'spec-x' }),
      binding({ name: 'arm-x', identity: X_ARM_CASING }),
      binding({ name: 'y', identity: Y }),
    );
    expect(names(index.onIdentity(id))).toEqual([`${ACCESS_KIND}/apps/arm-x`, `${ACCESS_KIND}/apps/spec-x`]);
  });

  it('keys identities as lower-cased resource IDs, one per identity however it is cased', () => {
    const index = indexOf(
      binding({ name: 'a' }),
      binding({ name: 'b', identity: X_UPPER }),
      binding({ name: 'c', identity: Y }),
    );
    expect(index.identities().sort()).toEqual([X.toLowerCase(), Y.toLowerCase()].sort());
  });

  it('a malformed ID still equals only itself, case aside', () => {
    const index = indexOf(binding({ identity: 'not-an-id' }));
    expect(names(index.onIdentity('NOT-AN-ID'))).toEqual([`${ACCESS_KIND}/apps/a`]);
    expect(index.onIdentity('not-an-id2')).toEqual([]);
  });
});

describe('BindingIndex.onIdentity', () => {
  it('includes bindings that only record a FIC on the identity (in force or stale)', () => {
    const index = indexOf(
      binding({ name: 'spec', identity: X }),
      binding({
        name: 'current',
        identity: Y,
        status: { federatedCredential: { name: 'f', identityResourceId: X } },
      }),
      binding({
        name: 'fallback',
        identity: Y,
        status: { identity: { resourceId: X_ARM_CASING }, federatedCredential: { name: 'f' } },
      }),
      binding({
        name: 'stale',
        identity: Y,
        status: { staleFederatedCredentials: [{ identityResourceId: X_UPPER, name: 'f' }] },
      }),
      binding({ name: 'other', identity: Y }),
    );
    expect(names(index.onIdentity(X))).toEqual(
      ['current', 'fallback', 'spec', 'stale'].map((n) => `${ACCESS_KIND}/apps/${n}`),
    );
    expect(names(index.onIdentity(Y))).toEqual(
      ['current', 'fallback', 'other', 'stale'].map((n) => `${ACCESS_KIND}/apps/${n}`),
    );
    expect(index.onIdentity(Z)).toEqual([]);
  });
});

describe('BindingIndex.ofServiceAccount', () => {
  it('is keyed by namespace and name, across kinds and identities', () => {
    const index = indexOf(
      binding({ name: 'a' }),
      binding({ name: 'b', identity: Y, kind: WORKLOAD_KIND }),
      binding({ name: 'c', namespace: 'other' }),
      binding({ name: 'd', sa: 'app2' }),
    );
    expect(names(index.ofServiceAccount('apps', 'app'))).toEqual([
      `${ACCESS_KIND}/apps/a`,
      `${WORKLOAD_KIND}/apps/b`,
    ]);
    expect(names(index.ofServiceAccount('other', 'app'))).toEqual([`${ACCESS_KIND}/other/c`]);
    expect(index.ofServiceAccount('apps', 'nobody')).toEqual([]);
  });
});

describe('BindingIndex.credentialInUse (apps/app on X)', () => {
  const self = { kind: ACCESS_KIND, namespace: 'apps', name: 'self' };
  it.each<{ case: string; others: Spec[]; ask?: string; except?: typeof self | undefined; inUse: boolean }>([
    { case: 'another live binding of the SA to X', others: [{ name: 'b' }], inUse: true },
    {
      case: "another binding naming X in ARM's casing",
      others: [{ name: 'b', identity: X_ARM_CASING }],
      inUse: true,
    },
    { case: 'asked with X upper-cased', others: [{ name: 'b' }], ask: X_UPPER, inUse: true },
    {
      case: 'another kind binding the SA to X',
      others: [{ name: 'self', kind: WORKLOAD_KIND }],
      inUse: true,
    },
    { case: 'only the excepted binding', others: [], inUse: false },
    { case: 'no except: the binding itself counts', others: [], except: undefined, inUse: true },
    { case: 'the other binding is being deleted', others: [{ name: 'b', deleting: true }], inUse: false },
    { case: 'the other binding is on another identity', others: [{ name: 'b', identity: Y }], inUse: false },
    { case: 'the other binding is of another SA', others: [{ name: 'b', sa: 'app2' }], inUse: false },
    {
      case: 'the other binding is in another namespace',
      others: [{ name: 'b', namespace: 'other' }],
      inUse: false,
    },
    {
      case: 'the other binding only records a FIC on X (its spec names Y)',
      others: [
        { name: 'b', identity: Y, status: { federatedCredential: { name: 'f', identityResourceId: X } } },
      ],
      inUse: false,
    },
  ])('$case → $inUse', ({ others, ask, inUse, ...rest }) => {
    const index = indexOf(binding({ name: 'self' }), ...others.map(binding));
    const except = 'except' in rest ? rest.except : self;
    expect(index.credentialInUse(ask ?? X, 'apps', 'app', except)).toBe(inUse);
  });

  it('is false for a ServiceAccount no binding has', () => {
    expect(indexOf(binding()).credentialInUse(X, 'apps', 'nobody')).toBe(false);
  });
});

describe('BindingIndex.earlierConflict (asked of apps/b, SA app, identity X, created 2000)', () => {
  const asked: Spec = { name: 'b', created: 2000 };
  it.each<{ case: string; others: Spec[]; conflict: string | undefined }>([
    {
      case: 'an earlier binding of the SA to another identity',
      others: [{ name: 'a', identity: Y }],
      conflict: 'a',
    },
    {
      case: 'a later one: the asked binding was first',
      others: [{ name: 'a', identity: Y, created: 3000 }],
      conflict: undefined,
    },
    {
      case: 'a tie broken by name (a < b)',
      others: [{ name: 'a', identity: Y, created: 2000 }],
      conflict: 'a',
    },
    {
      case: 'a tie broken by name (c > b)',
      others: [{ name: 'c', identity: Y, created: 2000 }],
      conflict: undefined,
    },
    {
      case: 'a tie broken by kind (EntraDatabaseAccess < EntraWorkloadIdentity)',
      others: [{ name: 'b', kind: WORKLOAD_KIND, identity: Y, created: 2000 }],
      conflict: undefined,
    },
    { case: 'the same identity', others: [{ name: 'a' }], conflict: undefined },
    {
      case: 'the same identity cased differently',
      others: [{ name: 'a', identity: X_ARM_CASING }],
      conflict: undefined,
    },
    { case: 'another SA', others: [{ name: 'a', identity: Y, sa: 'app2' }], conflict: undefined },
    {
      case: 'another namespace',
      others: [{ name: 'a', identity: Y, namespace: 'other' }],
      conflict: undefined,
    },
    {
      case: 'several earlier claimants: the first',
      others: [
        { name: 'x', identity: Y, created: 1500 },
        { name: 'y', identity: Z, created: 500 },
        { name: 'z', identity: Y, created: 1000 },
      ],
      conflict: 'y',
    },
    {
      case: 'the earliest has the same identity: the earliest other',
      others: [
        { name: 'same', created: 100 },
        { name: 'other', identity: Y, created: 1500 },
      ],
      conflict: 'other',
    },
  ])('$case → $conflict', ({ others, conflict }) => {
    const b = binding(asked);
    const index = indexOf(b, ...others.map(binding));
    expect(index.earlierConflict(b)?.name).toBe(conflict);
  });

  it('a binding of another kind conflicts too', () => {
    const b = binding(asked);
    const index = indexOf(b, binding({ name: 'w', kind: WORKLOAD_KIND, identity: Y, created: 1000 }));
    expect(index.earlierConflict(b)).toMatchObject({ kind: WORKLOAD_KIND, name: 'w' });
  });

  it('answers for a binding not (yet) in the index', () => {
    const index = indexOf(binding({ name: 'a', identity: Y, created: 1000 }));
    expect(index.earlierConflict(binding(asked))?.name).toBe('a');
  });

  // The first claim keeps the ServiceAccount until its resource is gone: an earlier binding being
  // deleted still conflicts (its clean-up still acts on that ServiceAccount).
  it('an earlier binding being deleted still counts', () => {
    const b = binding(asked);
    const index = indexOf(b, binding({ name: 'a', identity: Y, created: 1000, deleting: true }));
    expect(index.earlierConflict(b)?.name).toBe('a');
  });
});

describe('BindingIndex.resolvedFor', () => {
  const resolved = (clientId: string): EntraDatabaseAccessStatus => ({
    identity: { clientId, tenantId: 't' },
  });
  it.each<{ case: string; bindings: Spec[]; chosen: string | undefined; clientId?: string }>([
    { case: 'no binding', bindings: [], chosen: undefined },
    {
      case: 'no binding resolved',
      bindings: [{ name: 'a' }, { name: 'b', created: 500 }],
      chosen: undefined,
    },
    {
      case: 'the oldest resolved one',
      bindings: [
        { name: 'new', created: 3000, status: resolved('c-new') },
        { name: 'old', created: 1000, identity: Y, status: resolved('c-old') },
        { name: 'mid', created: 2000, status: resolved('c-mid') },
      ],
      chosen: 'old',
      clientId: 'c-old',
    },
    {
      case: 'older unresolved ones are passed over',
      bindings: [
        { name: 'unresolved', created: 100 },
        { name: 'empty', created: 200, status: resolved('') },
        { name: 'r', created: 3000, status: resolved('c-r') },
      ],
      chosen: 'r',
      clientId: 'c-r',
    },
    {
      case: 'a tie broken by key',
      bindings: [
        { name: 'b', status: resolved('c-b') },
        { name: 'a', status: resolved('c-a') },
      ],
      chosen: 'a',
      clientId: 'c-a',
    },
    {
      case: 'other ServiceAccounts and namespaces ignored',
      bindings: [
        { name: 'sa2', sa: 'app2', created: 1, status: resolved('c-sa2') },
        { name: 'ns2', namespace: 'other', created: 1, status: resolved('c-ns2') },
        { name: 'mine', created: 9000, status: resolved('c-mine') },
      ],
      chosen: 'mine',
      clientId: 'c-mine',
    },
  ])('$case → $chosen', ({ bindings, chosen, clientId }) => {
    const found = indexOf(...bindings.map(binding)).resolvedFor('apps', 'app');
    expect(found?.name).toBe(chosen);
    expect(found?.resolved?.clientId).toBe(clientId);
  });
});

describe('BindingIndex.contenders', () => {
  it.each<{ case: string; self: Spec; others: Spec[]; contenders: string[] }>([
    { case: 'nothing else', self: {}, others: [], contenders: [] },
    {
      case: 'the same ServiceAccount bound to another identity, of any kind',
      self: {},
      others: [
        { name: 'b', identity: Y },
        { name: 'w', kind: WORKLOAD_KIND, identity: Z },
      ],
      contenders: [`${ACCESS_KIND}/apps/b`, `${WORKLOAD_KIND}/apps/w`],
    },
    {
      case: 'the same ServiceAccount and identity, however it is cased: a sharer, not a contender',
      self: {},
      others: [{ name: 'b', identity: X_ARM_CASING }],
      contenders: [],
    },
    {
      case: 'the same identity on other ServiceAccounts: no verdict of theirs depends on it',
      self: {},
      others: [
        { name: 'b', sa: 'app2' },
        { name: 'c', namespace: 'other' },
      ],
      contenders: [],
    },
    {
      case: 'another namespace or ServiceAccount on another identity: unrelated',
      self: {},
      others: [
        { name: 'b', namespace: 'other', identity: Y },
        { name: 'c', sa: 'app2', identity: Z },
      ],
      contenders: [],
    },
  ])('$case', ({ self, others, contenders }) => {
    const me = binding(self);
    const index = indexOf(me, ...others.map(binding));
    const found = index.contenders(me);
    expect(names(found)).toEqual(contenders);
    expect(found).toHaveLength(new Set(found.map((b) => `${b.kind}/${b.namespace}/${b.name}`)).size);
  });

  it('never itself, even asked with a binding not in the index', () => {
    const me = binding();
    const index = indexOf(me);
    expect(index.contenders(me)).toEqual([]);
    expect(index.contenders(binding({ identity: Y }))).toEqual([]);
  });
});
