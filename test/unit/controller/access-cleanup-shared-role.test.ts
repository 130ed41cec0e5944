// The deletion path of the access reconciler on a role shared by one identity's resources (one
// role per principal on a server), with fakes for the cluster, Azure and the database:
// - a resource of the same identity that has not applied the role yet (created a moment ago) keeps
//   the role from being dropped; before the fix only resources that had already applied it did,
//   so a deletion racing with a new resource of the same identity dropped (or left NOLOGIN) the
//   role the new one had just been granted;
// - what the sharers ask for is passed on to be kept (not revoked);
// - a sharer that the admission checks refuse (its namespace may not use the identity) neither
//   keeps the role nor keeps privileges.
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  ALLOWED_IDENTITIES_ANNOTATION,
  FINALIZER,
  NAMESPACE_OPT_IN_ANNOTATION,
  OPT_IN_VALUE,
} from '../../../src/api/constants.ts';
import type { EntraDatabaseAccess, EntraDatabaseServer, Grant } from '../../../src/api/types.ts';
import {
  type AccessReconcilerDeps,
  createAccessReconciler,
  type DatabaseOps,
} from '../../../src/controller/access-reconciler.ts';
import type { InformerCache } from '../../../src/kube/informer-cache.ts';
import { createLogger } from '../../../src/observability/logger.ts';

const IDENTITY =
  '/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id0';
const SELECT_ORDERS: Grant = { on: 'tables', schema: 'public', tables: ['orders'], privileges: ['SELECT'] };
const CONNECT: Grant = { on: 'database', privileges: ['CONNECT'] };

function access(
  name: string,
  namespace: string,
  over: { deleting?: boolean; applied?: boolean; grants?: Grant[] } = {},
): EntraDatabaseAccess {
  const grants = over.grants ?? [CONNECT, SELECT_ORDERS];
  return {
    apiVersion: 'entra-access.io/v1alpha1',
    kind: 'EntraDatabaseAccess',
    metadata: {
      name,
      namespace,
      uid: `uid-${name}`,
      generation: 1,
      creationTimestamp: new Date(name === 'a' ? 1000 : 2000),
      finalizers: [FINALIZER],
      ...(over.deleting ? { deletionTimestamp: new Date(3000) } : {}),
    },
    spec: {
      serviceAccountName: name,
      identity: { resourceId: IDENTITY },
      serverRef: 'pg',
      database: 'shop',
      roleName: 'shop_r0',
      grants,
    },
    ...(over.applied
      ? {
          status: {
            identity: { resourceId: IDENTITY, clientId: 'c', principalId: 'p', tenantId: 't' },
            federatedCredential: { name: `fic-${name}`, issuer: 'https://issuer', subject: `x:${name}` },
            applied: { server: 'pg', role: 'shop_r0', database: 'shop', memberOf: [], grants },
          },
        }
      : {}),
  } as EntraDatabaseAccess;
}

const server = {
  metadata: { name: 'pg' },
  spec: {
    host: 'localhost',
    adminRole: 'admin',
    allowedNamespaces: { names: ['apps', 'other'] },
    allowedDatabases: ['shop'],
  },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
} as unknown as EntraDatabaseServer;

function namespace(name: string, allowed: string): k8s.V1Namespace {
  return {
    metadata: {
      name,
      annotations: { [NAMESPACE_OPT_IN_ANNOTATION]: OPT_IN_VALUE, [ALLOWED_IDENTITIES_ANNOTATION]: allowed },
    },
  };
}

function cache<T extends { metadata?: { name?: string; namespace?: string } }>(items: T[]): InformerCache<T> {
  return {
    list: (ns?: string) => items.filter((i) => ns === undefined || i.metadata?.namespace === ns),
    get: async (name: string, ns?: string) =>
      items.find((i) => i.metadata?.name === name && (ns === undefined || i.metadata?.namespace === ns)),
  } as unknown as InformerCache<T>;
}

/** Runs the reconcile of the deleted resource `a` among `others`; returns the remove() call. */
async function deleteA(others: EntraDatabaseAccess[]): Promise<Parameters<DatabaseOps['remove']>[0]> {
  const removed: Array<Parameters<DatabaseOps['remove']>[0]> = [];
  const a = access('a', 'apps', { deleting: true, applied: true });
  const deps: AccessReconcilerDeps = {
    custom: {
      // The deletion path works on the live object (the cache may lag).
      getNamespacedCustomObject: async () => a,
      patchNamespacedCustomObject: async () => ({}),
    } as unknown as k8s.CustomObjectsApi,
    core: {} as k8s.CoreV1Api,
    accesses: cache([a, ...others]),
    servers: cache([server]),
    namespaces: cache([
      namespace('apps', `${IDENTITY}`),
      // `other` is opted in but may not use the identity.
      namespace('other', '/subscriptions/00000000-0000-0000-0000-0000000000b2/*'),
    ]),
    azure: {
      getIdentity: async () => {
        throw new Error('not on the deletion path');
      },
      ensureFederatedCredential: async () => {
        throw new Error('not on the deletion path');
      },
      deleteFederatedCredential: async () => ({ deleted: true }),
    },
    database: {
      ensure: async () => {
        throw new Error('not on the deletion path');
      },
      remove: async (input) => {
        removed.push(input);
        return { dropped: input.dropRole, ownedObjects: [] };
      },
    },
    events: { warning: () => {}, normal: () => {} },
    logger: createLogger('error'),
    settings: { clusterName: 'c', issuer: 'https://issuer', postgresScope: 's', resyncMs: 60_000 },
  };
  await createAccessReconciler(deps)('apps/a');
  expect(removed).toHaveLength(1);
  return removed[0]!;
}

describe('deleting one of the resources sharing a role', () => {
  it('drops the role when no other resource uses the identity on the server', async () => {
    const call = await deleteA([]);
    expect(call.dropRole).toBe(true);
    expect(call.keep).toEqual([]);
  });

  it('keeps the role, and what they ask for, for a resource that applied it', async () => {
    const call = await deleteA([access('b', 'apps', { applied: true, grants: [CONNECT] })]);
    expect(call.dropRole).toBe(false);
    expect(call.keep).toEqual([{ database: 'shop', memberOf: [], grants: [CONNECT] }]);
  });

  it('keeps the role for a resource of the same identity that has not applied it yet', async () => {
    const call = await deleteA([access('b', 'apps', { grants: [SELECT_ORDERS] })]);
    expect(call.dropRole).toBe(false);
    expect(call.keep).toEqual([{ database: 'shop', memberOf: [], grants: [SELECT_ORDERS] }]);
  });

  it('lets neither the role nor its privileges be kept by a resource the admission checks refuse', async () => {
    const call = await deleteA([access('b', 'other', { grants: [SELECT_ORDERS] })]);
    expect(call.dropRole).toBe(true);
    expect(call.keep).toEqual([]);
  });
});
