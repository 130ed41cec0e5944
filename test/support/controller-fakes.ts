// Fakes and builders for unit tests of the controller's reconcilers: object bodies, informer caches
// over a plain list, the binding and role indexes filled from it, and a world whose Kubernetes,
// Azure and database calls are recorded. No I/O; for tests that need the real parts, test/harness.
import type * as k8s from '@kubernetes/client-node';
import { BindingIndex, bindingOf } from '../../src/api/binding-index.ts';
import {
  ACCESS_KIND,
  ALLOWED_IDENTITIES_ANNOTATION,
  FINALIZER,
  NAMESPACE_OPT_IN_ANNOTATION,
  OPT_IN_VALUE,
  WI_CLIENT_ID_ANNOTATION,
  WI_TENANT_ID_ANNOTATION,
} from '../../src/api/constants.ts';
import type {
  EntraDatabaseAccess,
  EntraDatabaseAccessSpec,
  EntraDatabaseAccessStatus,
  EntraDatabaseServer,
} from '../../src/api/types.ts';
import type { IdentityInfo } from '../../src/azure/managed-identities.ts';
import type { DatabaseOps } from '../../src/controller/database.ts';
import { DatabaseRoleIndex } from '../../src/controller/database-role-index.ts';
import { databaseAccessKind } from '../../src/controller/kinds/database-access.ts';
import { createObjectReconciler } from '../../src/controller/reconcile/object-reconciler.ts';
import type { ReconcileResult } from '../../src/controller/workqueue.ts';
import type { InformerCache } from '../../src/kube/informer-cache.ts';
import { createLogger } from '../../src/observability/logger.ts';

export const IDENTITY =
  '/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id0';

export interface AccessBody {
  name?: string;
  namespace?: string;
  spec?: Partial<EntraDatabaseAccessSpec>;
  status?: EntraDatabaseAccessStatus;
  deleting?: boolean;
  /** Milliseconds since epoch. */
  created?: number;
  generation?: number;
}

/** An EntraDatabaseAccess `a` in `apps` (SA `app`, role `app`, server `pg`, database `shop`). */
export function accessBody(over: AccessBody = {}): EntraDatabaseAccess {
  const name = over.name ?? 'a';
  return {
    apiVersion: 'entra-access.io/v1alpha1',
    kind: 'EntraDatabaseAccess',
    metadata: {
      name,
      namespace: over.namespace ?? 'apps',
      uid: `uid-${name}`,
      generation: over.generation ?? 1,
      creationTimestamp: new Date(over.created ?? 1000),
      finalizers: [FINALIZER],
      ...(over.deleting ? { deletionTimestamp: new Date(3000) } : {}),
    },
    spec: {
      serviceAccountName: 'app',
      identity: { resourceId: IDENTITY },
      serverRef: 'pg',
      database: 'shop',
      roleName: 'app',
      memberOf: ['readers'],
      grants: [{ target: 'database', privileges: ['CONNECT'] }],
      ...over.spec,
    },
    ...(over.status ? { status: over.status } : {}),
  } as EntraDatabaseAccess;
}

/** A Ready server `pg` allowing `namespaces`, database `shop` and group `readers`. */
export function serverBody(namespaces: string[] = ['apps']): EntraDatabaseServer {
  return {
    metadata: { name: 'pg' },
    spec: {
      host: 'pg.example',
      adminRole: 'admin',
      allowedNamespaces: { names: namespaces },
      allowedDatabases: ['shop'],
      allowedMemberOf: ['readers'],
    },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  } as unknown as EntraDatabaseServer;
}

/** An opted-in Namespace whose allow-list is `allowed`. */
export function namespaceBody(name: string, allowed: string = IDENTITY): k8s.V1Namespace {
  return {
    metadata: {
      name,
      annotations: { [NAMESPACE_OPT_IN_ANNOTATION]: OPT_IN_VALUE, [ALLOWED_IDENTITIES_ANNOTATION]: allowed },
    },
  };
}

/** An InformerCache over whatever `items()` returns at the time of the call. */
export function fakeCache<T extends { metadata?: { name?: string; namespace?: string } }>(
  items: () => readonly T[],
): InformerCache<T> {
  return {
    list: (ns?: string) => items().filter((i) => ns === undefined || i.metadata?.namespace === ns),
    get: async (name: string, ns?: string) =>
      items().find((i) => i.metadata?.name === name && (ns === undefined || i.metadata?.namespace === ns)),
    on: () => {},
  } as unknown as InformerCache<T>;
}

/** The binding and role indexes as the controller keeps them for these access resources. */
export function indexesOf(accesses: readonly EntraDatabaseAccess[]): {
  bindings: BindingIndex;
  roles: DatabaseRoleIndex;
} {
  const bindings = new BindingIndex();
  const roles = new DatabaseRoleIndex();
  for (const access of accesses) {
    const binding = bindingOf(access, ACCESS_KIND);
    if (binding) bindings.set(binding);
    roles.set(access);
  }
  return { bindings, roles };
}

/** A cluster, Azure and a database around one access resource, recording what was asked of them. */
export interface World {
  access: EntraDatabaseAccess;
  /** Other access resources in the cache. */
  others: EntraDatabaseAccess[];
  /** What the apiserver holds; undefined once deleted. */
  live: EntraDatabaseAccess | undefined;
  servers: EntraDatabaseServer[];
  namespaces: k8s.V1Namespace[];
  /** Status merge patches, in order. */
  statusWrites: Array<Partial<EntraDatabaseAccessStatus>>;
  warnings: Array<{ reason: string; message: string }>;
  removed: Array<Parameters<DatabaseOps['remove']>[0]>;
  ficDeletes: Array<{ identity: string; name: string }>;
  getIdentity: () => Promise<IdentityInfo>;
  ensure: DatabaseOps['ensure'];
  ensureFic: () => Promise<{ name: string; action: 'created' | 'updated' | 'unchanged' | 'adopted' }>;
  deleteFic?: (identity: string, name: string) => Promise<{ deleted: boolean }>;
  patchStatus?: () => Promise<unknown>;
  onRemove?: () => void;
  /** The operator's own client ID, as the controller knows it. */
  operatorClientId?: string;
}

export function world(over: Partial<World> = {}): World {
  const access = over.access ?? accessBody();
  return {
    access,
    others: [],
    live: access,
    servers: [serverBody()],
    namespaces: [namespaceBody('apps')],
    statusWrites: [],
    warnings: [],
    removed: [],
    ficDeletes: [],
    getIdentity: async () => ({
      resourceId: IDENTITY,
      clientId: 'client-1',
      principalId: 'principal-1',
      tenantId: 'tenant-1',
    }),
    ensure: async () => ({
      user: 'app',
      adoptedExisting: false,
      applied: { server: 'pg', role: 'app', database: 'shop', memberOf: ['readers'], grants: [] },
      missing: [],
    }),
    ensureFic: async () => ({ name: 'fic-app', action: 'unchanged' }),
    ...over,
  };
}

/** Applies a status merge patch as the apiserver would (nulls remove). */
export function applyMergePatch<T>(target: T, patch: unknown): T {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch as T;
  const base = target !== null && typeof target === 'object' && !Array.isArray(target) ? target : {};
  const result: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result as T;
}

/** The status after every write so far, as the apiserver would hold it. */
export function storedStatus(w: World): EntraDatabaseAccessStatus | undefined {
  return w.statusWrites.reduce<EntraDatabaseAccessStatus | undefined>(
    (status, patch) => applyMergePatch(status, patch),
    w.access.status,
  );
}

/** The EntraDatabaseAccess reconcile over `w`, as the controller wires it. */
export function reconciler(w: World): (key: string) => Promise<ReconcileResult> {
  const all = () => [w.access, ...w.others];
  const { bindings, roles } = indexesOf(all());
  const core = {
    readNamespacedServiceAccount: async () => ({
      metadata: {
        name: 'app',
        annotations: { [WI_CLIENT_ID_ANNOTATION]: 'client-1', [WI_TENANT_ID_ANNOTATION]: 'tenant-1' },
      },
    }),
    patchNamespacedServiceAccount: async () => ({}),
  } as unknown as k8s.CoreV1Api;
  const kind = databaseAccessKind({
    core,
    accesses: fakeCache(all),
    servers: fakeCache(() => w.servers),
    namespaces: fakeCache(() => w.namespaces),
    bindings,
    roles,
    azure: {
      getIdentity: () => w.getIdentity(),
      ensureFederatedCredential: () => w.ensureFic(),
      deleteFederatedCredential: async (identity, name) => {
        w.ficDeletes.push({ identity, name });
        return w.deleteFic ? w.deleteFic(identity, name) : { deleted: true };
      },
    },
    database: {
      ensure: (input) => w.ensure(input),
      remove: async (input) => {
        w.removed.push(input);
        w.onRemove?.();
        return { dropped: input.dropRole, ownedObjects: [] };
      },
    },
    settings: {
      clusterName: 'c',
      issuer: 'https://issuer',
      postgresScope: 's',
      operator: { clientId: w.operatorClientId },
    },
  });
  return createObjectReconciler(kind, {
    custom: {
      getNamespacedCustomObject: async () => {
        if (!w.live) throw Object.assign(new Error('HTTP-Code: 404'), { code: 404 });
        return w.live;
      },
      patchNamespacedCustomObject: async () => {
        if (!w.live) throw Object.assign(new Error('HTTP-Code: 404'), { code: 404 });
        return {};
      },
      patchNamespacedCustomObjectStatus: async (request: { body: { status: EntraDatabaseAccessStatus } }) => {
        if (w.patchStatus) return w.patchStatus();
        w.statusWrites.push(request.body.status);
        return {};
      },
    } as unknown as k8s.CustomObjectsApi,
    events: {
      warning: (_target, reason, message) => w.warnings.push({ reason, message }),
      normal: () => {},
    },
    logger: createLogger('error'),
    resyncMs: 60_000,
    now: () => new Date('2026-01-01T00:00:00Z'),
  });
}
