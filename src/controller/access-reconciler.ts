// Reconciles one EntraDatabaseAccess (DESIGN.md §5): admission checks, then identity, federated
// credential, ServiceAccount and database role, each setting its condition; Ready is their
// conjunction. Deletion runs behind the finalizer. A reconcile that finds everything in place
// makes no ARM write, runs no DDL and writes no status.
import * as k8s from '@kubernetes/client-node';
import {
  ACCESS_PLURAL,
  ALLOWED_IDENTITIES_ANNOTATION,
  ConditionType,
  FINALIZER,
  GROUP,
  NAMESPACE_OPT_IN_ANNOTATION,
  OPT_IN_VALUE,
  Reason,
  TOKEN_AUDIENCE,
  VERSION,
  WI_CLIENT_ID_ANNOTATION,
  WI_TENANT_ID_ANNOTATION,
} from '../api/constants.ts';
import type {
  AppliedStatus,
  EntraDatabaseAccess,
  EntraDatabaseAccessStatus,
  EntraDatabaseServer,
} from '../api/types.ts';
import { DEFAULT_DELETION_POLICY, DEFAULT_PORT, DEFAULT_SSL_MODE } from '../api/types.ts';
import {
  AzureRetryableError,
  FederatedCredentialLimit,
  FederatedCredentialRejected,
  IdentityNotFound,
} from '../azure/arm-errors.ts';
import { ficName, ficSubject } from '../azure/fic-name.ts';
import type { IdentityInfo, ManagedIdentities } from '../azure/managed-identities.ts';
import { statusOf } from '../kube/client.ts';
import { isTrue } from '../kube/conditions.ts';
import type { EventSink } from '../kube/events.ts';
import type { InformerCache } from '../kube/informer-cache.ts';
import type { Logger } from '../observability/logger.ts';
import type { MissingObject } from '../postgres/privilege-set.ts';
import { RoleConflictError } from '../postgres/roles.ts';
import {
  checkAccess,
  checkResolvedIdentity,
  type NamespaceView,
  type OperatorIdentity,
  roleNameOf,
} from './guards.ts';
import {
  failedStatus,
  failureOf,
  isPacedWrite,
  missingObjectsMessage,
  nextStatus,
  refusedStatus,
  type StepOutcome,
  statusChanged,
} from './status.ts';
import { type ReconcileResult, RetryAfterError, retryAfterMsOf } from './workqueue.ts';

/** What another access resource sharing the role (same identity, same server) asks for. */
export interface SharedRoleRequest {
  database: string;
  memberOf: string[];
  grants: NonNullable<EntraDatabaseAccess['spec']['grants']>;
}

/** The database side, bound to the PostgreSQL layer by the controller role. */
export interface DatabaseOps {
  ensure(input: {
    server: EntraDatabaseServer;
    role: string;
    principalId: string;
    database: string;
    memberOf: string[];
    grants: NonNullable<EntraDatabaseAccess['spec']['grants']>;
    applied: AppliedStatus | undefined;
    /** Never revoked: the other resources sharing the role still ask for it. */
    keep?: SharedRoleRequest[];
  }): Promise<{
    user: string;
    adoptedExisting: boolean;
    applied: AppliedStatus;
    /** Objects the grants or memberOf name that do not exist: not granted, the rest is. */
    missing?: MissingObject[];
  }>;
  remove(input: {
    server: EntraDatabaseServer;
    applied: AppliedStatus;
    dropRole: boolean;
    /** With dropRole false: what the others sharing the role still ask for, never revoked. */
    keep?: SharedRoleRequest[];
  }): Promise<{ dropped: boolean; ownedObjects: string[] }>;
}

/**
 * ensure() created the role and then failed (the database does not exist, a group cannot be
 * granted): `applied` records the role, with nothing granted, so the status holds it as soon as it
 * exists and a deletion drops it. `cause` is the failure.
 */
export class RoleCreatedError extends Error {
  override readonly name = 'RoleCreatedError';
  readonly applied: AppliedStatus;

  constructor(applied: AppliedStatus, cause: unknown) {
    super((cause as Error)?.message ?? String(cause), { cause });
    this.applied = applied;
  }
}

/** The object itself answered 404 to a write: it is gone, and there is nothing left to do. */
class ObjectGone extends Error {
  override readonly name = 'ObjectGone';
}

/** Grants name objects that do not exist: reported, and retried with the work queue's backoff. */
export class GrantTargetMissing extends Error {
  override readonly name = 'GrantTargetMissing';
  /** A floor on the backoff: the catalog is not read again within this. */
  readonly retryAfterMs = 5_000;
}

/** A 404 on a call about the reconciled object means it is gone (deleted meanwhile). */
async function onObject<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (statusOf(error) === 404) throw new ObjectGone('the object is gone', { cause: error });
    throw error;
  }
}

export interface AccessReconcilerDeps {
  custom: k8s.CustomObjectsApi;
  core: k8s.CoreV1Api;
  accesses: InformerCache<EntraDatabaseAccess>;
  servers: InformerCache<EntraDatabaseServer>;
  namespaces: InformerCache<k8s.V1Namespace>;
  azure: Pick<ManagedIdentities, 'getIdentity' | 'ensureFederatedCredential' | 'deleteFederatedCredential'>;
  database: DatabaseOps;
  events: EventSink;
  logger: Logger;
  settings: {
    clusterName: string;
    issuer: string;
    postgresScope: string;
    resyncMs: number;
    /** The operator's own managed identity, which no access resource may ever bind. */
    operator?: OperatorIdentity;
  };
  now?: () => Date;
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const jsonPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);

export function splitKey(key: string): { namespace: string; name: string } {
  const [namespace = '', name = ''] = key.split('/');
  return { namespace, name };
}

function namespaceView(namespace: k8s.V1Namespace | undefined): NamespaceView | undefined {
  if (!namespace?.metadata?.name) return undefined;
  const annotations = namespace.metadata.annotations ?? {};
  const view: NamespaceView = {
    name: namespace.metadata.name,
    optedIn: annotations[NAMESPACE_OPT_IN_ANNOTATION] === OPT_IN_VALUE,
    labels: namespace.metadata.labels ?? {},
  };
  const allowed = annotations[ALLOWED_IDENTITIES_ANNOTATION];
  if (allowed !== undefined) view.allowedIdentities = allowed;
  return view;
}

/** `<sa>` of a FIC subject `system:serviceaccount:<ns>:<sa>`; undefined for anything else. */
function subjectServiceAccount(subject: string | undefined): string | undefined {
  const parts = subject?.split(':') ?? [];
  return parts.length === 4 && parts[0] === 'system' && parts[1] === 'serviceaccount' && parts[3]
    ? parts[3]
    : undefined;
}

function sameId(a: string | undefined, b: string | undefined): boolean {
  return (a ?? '').toLowerCase() === (b ?? '').toLowerCase();
}

function requestOf(access: EntraDatabaseAccess): SharedRoleRequest {
  return {
    database: access.spec.database,
    memberOf: access.spec.memberOf ?? [],
    grants: access.spec.grants ?? [],
  };
}

export function createAccessReconciler(
  deps: AccessReconcilerDeps,
): (key: string) => Promise<ReconcileResult> {
  const { custom, core, events, logger, settings } = deps;
  const now = deps.now ?? (() => new Date());
  const api = { group: GROUP, version: VERSION, plural: ACCESS_PLURAL };

  const target = (access: EntraDatabaseAccess) => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'EntraDatabaseAccess',
    name: access.metadata.name ?? '',
    namespace: access.metadata.namespace ?? '',
    ...(access.metadata.uid ? { uid: access.metadata.uid } : {}),
  });

  async function writeStatus(access: EntraDatabaseAccess, status: EntraDatabaseAccessStatus): Promise<void> {
    if (!statusChanged(access.status, status)) return;
    await onObject(
      custom.patchNamespacedCustomObjectStatus(
        {
          ...api,
          namespace: access.metadata.namespace ?? '',
          name: access.metadata.name ?? '',
          body: { status },
        },
        mergePatch,
      ),
    );
  }

  /**
   * Other access resources that still need this identity's FIC for `serviceAccountName` (by
   * default the one the spec names; the recorded FIC's own one when the spec has moved on).
   */
  function ficStillUsed(
    access: EntraDatabaseAccess,
    resourceId: string,
    serviceAccountName = access.spec.serviceAccountName,
  ): boolean {
    return deps.accesses
      .list(access.metadata.namespace)
      .some(
        (other) =>
          other.metadata.uid !== access.metadata.uid &&
          !other.metadata.deletionTimestamp &&
          other.spec.serviceAccountName === serviceAccountName &&
          sameId(other.spec.identity.resourceId, resourceId),
      );
  }

  /** The service account the recorded FIC trusts: it may differ from the spec's after a change. */
  function recordedServiceAccount(access: EntraDatabaseAccess): string {
    return (
      subjectServiceAccount(access.status?.federatedCredential?.subject) ?? access.spec.serviceAccountName
    );
  }

  /**
   * Those of `candidates` that pass the admission checks now. Only they may keep privileges on a
   * shared role: a resource the checks refuse (an identity its namespace may not use, a server
   * that does not allow it) must not hold on to what another tenant's resource revokes.
   */
  async function admitted(candidates: EntraDatabaseAccess[]): Promise<EntraDatabaseAccess[]> {
    const result: EntraDatabaseAccess[] = [];
    for (const other of candidates) {
      const verdict = checkAccess({
        access: other,
        namespace: namespaceView(await deps.namespaces.get(other.metadata.namespace ?? '')),
        server: await deps.servers.get(other.spec.serverRef),
        others: deps.accesses.list().filter((o) => o.metadata.uid !== other.metadata.uid),
      });
      if (verdict.ok) result.push(other);
    }
    return result;
  }

  async function cleanUp(access: EntraDatabaseAccess): Promise<string | undefined> {
    if ((access.spec.deletionPolicy ?? DEFAULT_DELETION_POLICY) === 'Orphan') return undefined;
    let kept: string | undefined;
    const applied = access.status?.applied;
    const server = applied?.server ? await deps.servers.get(applied.server) : undefined;
    if (applied?.role && server) {
      // Sharers: those that applied the role, and the admitted ones of the same identity on this
      // server that have not yet (one role per principal: they are about to use it). Dropping the
      // role under one of the latter would leave it Ready without a role, or with a NOLOGIN one.
      const identityId = access.status?.identity?.resourceId ?? access.spec.identity.resourceId;
      const others = deps.accesses
        .list()
        .filter(
          (other) =>
            other.metadata.uid !== access.metadata.uid &&
            !other.metadata.deletionTimestamp &&
            other.spec.serverRef === applied.server,
        );
      const appliedIt = others.filter((other) => other.status?.applied?.role === applied.role);
      const coming = await admitted(
        others.filter(
          (other) =>
            other.status?.applied?.role !== applied.role &&
            sameId(other.spec.identity.resourceId, identityId),
        ),
      );
      const shared = appliedIt.length > 0 || coming.length > 0;
      const result = await deps.database.remove({
        server,
        applied,
        dropRole: !shared,
        keep: [...(await admitted(appliedIt)), ...coming].map(requestOf),
      });
      if (!shared && !result.dropped) {
        kept = `role ${applied.role} owns objects (${result.ownedObjects.join(', ')}); it was kept with NOLOGIN and no data was dropped`;
      }
    }
    const identity = access.status?.identity?.resourceId;
    const fic = access.status?.federatedCredential?.name;
    if (identity && fic && !ficStillUsed(access, identity, recordedServiceAccount(access))) {
      await deps.azure.deleteFederatedCredential(identity, fic);
    }
    return kept;
  }

  async function removeFinalizer(access: EntraDatabaseAccess): Promise<void> {
    const finalizers = access.metadata.finalizers ?? [];
    const index = finalizers.indexOf(FINALIZER);
    if (index < 0) return;
    await onObject(
      custom.patchNamespacedCustomObject(
        {
          ...api,
          namespace: access.metadata.namespace ?? '',
          name: access.metadata.name ?? '',
          // `test` first: never remove someone else's finalizer from a list that changed meanwhile.
          body: [
            { op: 'test', path: `/metadata/finalizers/${index}`, value: FINALIZER },
            { op: 'remove', path: `/metadata/finalizers/${index}` },
          ],
        },
        jsonPatch,
      ),
    );
  }

  async function addFinalizer(access: EntraDatabaseAccess): Promise<void> {
    const body = access.metadata.finalizers
      ? [{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]
      : [{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }];
    await onObject(
      custom.patchNamespacedCustomObject(
        { ...api, namespace: access.metadata.namespace ?? '', name: access.metadata.name ?? '', body },
        jsonPatch,
      ),
    );
  }

  /** The ServiceAccount with the identity's annotations; never overwrites a client-id set by hand. */
  async function ensureServiceAccount(
    access: EntraDatabaseAccess,
    identity: IdentityInfo,
  ): Promise<StepOutcome> {
    const namespace = access.metadata.namespace ?? '';
    const name = access.spec.serviceAccountName;
    const wanted = {
      [WI_CLIENT_ID_ANNOTATION]: identity.clientId,
      [WI_TENANT_ID_ANNOTATION]: identity.tenantId,
    };
    let existing: k8s.V1ServiceAccount | undefined;
    try {
      existing = await core.readNamespacedServiceAccount({ namespace, name });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    const type = ConditionType.ServiceAccountReady;
    if (!existing) {
      await core.createNamespacedServiceAccount({
        namespace,
        body: { metadata: { name, annotations: wanted } },
      });
      return { type, ok: true, reason: Reason.Created, message: `created ServiceAccount ${name}` };
    }
    const annotations = existing.metadata?.annotations ?? {};
    const current = annotations[WI_CLIENT_ID_ANNOTATION];
    const previous = access.status?.identity?.clientId;
    if (current && current !== identity.clientId && current !== previous) {
      return {
        type,
        ok: false,
        reason: Reason.ServiceAccountClientIdConflict,
        message: `ServiceAccount ${name} has ${WI_CLIENT_ID_ANNOTATION}=${current}, set by someone else; entra-access leaves it. Remove the annotation (or set it to ${identity.clientId}) to use this identity`,
      };
    }
    if (current !== identity.clientId || annotations[WI_TENANT_ID_ANNOTATION] !== identity.tenantId) {
      await core.patchNamespacedServiceAccount(
        { namespace, name, body: { metadata: { annotations: wanted } } },
        mergePatch,
      );
    }
    return {
      type,
      ok: true,
      reason: Reason.UpToDate,
      message: `ServiceAccount ${name} carries the identity's client-id`,
    };
  }

  /** The object as the apiserver has it now; undefined once it is gone. */
  async function liveAccess(namespace: string, name: string): Promise<EntraDatabaseAccess | undefined> {
    try {
      return (await custom.getNamespacedCustomObject({ ...api, namespace, name })) as EntraDatabaseAccess;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async function reconcileKey(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const access = await deps.accesses.get(name, namespace);
    if (!access) return {};
    const log = logger.child({ kind: 'EntraDatabaseAccess', namespace, name });

    if (access.metadata.deletionTimestamp) {
      if (!access.metadata.finalizers?.includes(FINALIZER)) return {};
      // The cache may lag: the object may be gone already (a previous run removed the finalizer
      // and the key came round again before the cache saw the deletion), or its status may be
      // newer than the cached one (the role recorded by the last failed reconcile). Clean up from
      // the live object, and not at all once it is gone.
      const live = await liveAccess(namespace, name);
      if (!live?.metadata.deletionTimestamp || !live.metadata.finalizers?.includes(FINALIZER)) return {};
      const kept = await cleanUp(live);
      if (kept) events.warning(target(live), Reason.RoleOwnsObjects, kept);
      await removeFinalizer(live);
      log.info({ deletionPolicy: live.spec.deletionPolicy ?? DEFAULT_DELETION_POLICY }, 'cleaned up');
      return {};
    }

    const generation = access.metadata.generation ?? 0;
    const outcomes: StepOutcome[] = [];
    const fields: Omit<EntraDatabaseAccessStatus, 'conditions' | 'observedGeneration'> = {};
    /** The step running now: an error thrown out of the reconcile is reported on its condition. */
    let step: StepOutcome['type'] | undefined;
    /** Errors already reported on a condition before being thrown (for the backoff and metric). */
    let reported: unknown;

    const finish = async (
      result: ReconcileResult = { requeueAfterMs: settings.resyncMs },
    ): Promise<ReconcileResult> => {
      const status = nextStatus(access.status, outcomes, fields, generation, now());
      const failed = outcomes.find((o) => !o.ok);
      const wasReady = isTrue(access.status?.conditions, ConditionType.Ready);
      if (failed && statusChanged(access.status, status))
        events.warning(target(access), failed.reason, failed.message);
      if (!failed && !wasReady)
        events.normal(
          target(access),
          Reason.Reconciled,
          'identity, federated credential, service account and database role are ready',
        );
      await writeStatus(access, status);
      return result;
    };

    try {
      return await steps();
    } catch (error) {
      if (error instanceof ObjectGone || error === reported) throw error;
      // Reconcile edge (DESIGN.md §2): whatever a step threw ends in its condition (or Ready, when
      // no step ran yet) with a reason and a message, and a Warning Event (once: an unchanged
      // status is not written and sends none); then it is rethrown so the work queue backs off
      // and counts the error.
      const failure = failureOf(error, step);
      if (!failure) throw error;
      try {
        if (step) {
          const ran = outcomes.filter((o) => o.type !== step);
          outcomes.length = 0;
          outcomes.push(...ran, { type: step, ok: false, ...failure });
          await finish();
        } else {
          const status = failedStatus(access.status, failure, generation, now());
          if (statusChanged(access.status, status))
            events.warning(target(access), failure.reason, failure.message);
          await writeStatus(access, status);
        }
      } catch (reportError) {
        if (reportError instanceof ObjectGone) throw reportError;
        log.warn({ err: (reportError as Error).message }, 'could not report the failure in status');
      }
      throw error;
    }

    async function steps(): Promise<ReconcileResult> {
      if (!access) return {};
      if (!access.metadata.finalizers?.includes(FINALIZER)) await addFinalizer(access);

      const server = await deps.servers.get(access.spec.serverRef);
      const verdict = checkAccess({
        access,
        namespace: namespaceView(await deps.namespaces.get(namespace)),
        server,
        others: deps.accesses.list().filter((other) => other.metadata.uid !== access.metadata.uid),
      });
      if (!verdict.ok) {
        const status = refusedStatus(access.status, verdict.reason, verdict.message, generation, now());
        if (statusChanged(access.status, status))
          events.warning(target(access), verdict.reason, verdict.message);
        await writeStatus(access, status);
        return { requeueAfterMs: settings.resyncMs };
      }

      // 2. Identity.
      step = ConditionType.IdentityResolved;
      const resourceId = access.spec.identity.resourceId;
      let identity: IdentityInfo;
      try {
        identity = await deps.azure.getIdentity(resourceId);
      } catch (error) {
        if (error instanceof IdentityNotFound) {
          outcomes.push({
            type: ConditionType.IdentityResolved,
            ok: false,
            reason: Reason.IdentityNotFound,
            message: `managed identity ${resourceId} was not found (or the operator may not read it): check spec.identity.resourceId`,
          });
          return finish({ requeueAfterMs: 60_000 });
        }
        throw error;
      }
      // Only now is the identity's client ID known: an allow-list that happens to cover the
      // operator's own identity must still never let a tenant federate to it.
      const resolved = checkResolvedIdentity(access, identity, settings.operator ?? {});
      if (!resolved.ok) {
        const status = refusedStatus(access.status, resolved.reason, resolved.message, generation, now());
        if (statusChanged(access.status, status))
          events.warning(target(access), resolved.reason, resolved.message);
        await writeStatus(access, status);
        return { requeueAfterMs: settings.resyncMs };
      }
      outcomes.push({
        type: ConditionType.IdentityResolved,
        ok: true,
        reason: Reason.Resolved,
        message: `client ID ${identity.clientId}`,
      });
      fields.identity = {
        resourceId,
        clientId: identity.clientId,
        principalId: identity.principalId,
        tenantId: identity.tenantId,
      };

      // The identity changed: take down what was made on the old one first.
      const previous = access.status?.identity;
      if (previous?.resourceId && !sameId(previous.resourceId, resourceId)) {
        step = ConditionType.FederatedCredentialReady;
        const oldFic = access.status?.federatedCredential?.name;
        if (oldFic && !ficStillUsed(access, previous.resourceId, recordedServiceAccount(access))) {
          await deps.azure.deleteFederatedCredential(previous.resourceId, oldFic);
        }
        // The role was made on the server recorded in `applied`, which is not necessarily the one
        // the spec names now: never drop a role of that name on another server.
        const applied = access.status?.applied;
        const appliedServer = applied?.server ? await deps.servers.get(applied.server) : undefined;
        step = ConditionType.DatabaseRoleReady;
        if (applied?.role && previous.principalId !== identity.principalId && appliedServer) {
          const removed = await deps.database.remove({ server: appliedServer, applied, dropRole: true });
          if (!removed.dropped) {
            events.warning(
              target(access),
              Reason.RoleOwnsObjects,
              `role ${applied.role} of the previous identity owns objects (${removed.ownedObjects.join(', ')}); it was kept with NOLOGIN and no data was dropped. The new identity needs another spec.roleName`,
            );
          }
          fields.applied = {};
        }
      }

      // 3. Federated credential.
      step = ConditionType.FederatedCredentialReady;
      const subject = ficSubject(namespace, access.spec.serviceAccountName);
      try {
        const fic = await deps.azure.ensureFederatedCredential(resourceId, {
          name: ficName(settings.clusterName, namespace, access.spec.serviceAccountName),
          issuer: settings.issuer,
          subject,
          audience: TOKEN_AUDIENCE,
        });
        fields.federatedCredential = { name: fic.name, issuer: settings.issuer, subject };
        // The service account changed (same identity): the FIC made for the old one is no longer
        // this resource's. Left behind it would keep trusting the old service account and count
        // against the identity's 20-FIC limit.
        const recorded = access.status?.federatedCredential;
        if (
          recorded?.name &&
          recorded.name !== fic.name &&
          previous?.resourceId &&
          sameId(previous.resourceId, resourceId) &&
          !ficStillUsed(access, resourceId, recordedServiceAccount(access))
        ) {
          await deps.azure.deleteFederatedCredential(resourceId, recorded.name);
        }
        outcomes.push({
          type: ConditionType.FederatedCredentialReady,
          ok: true,
          reason: fic.action === 'adopted' ? Reason.Adopted : Reason.UpToDate,
          message: `federated credential ${fic.name} trusts ${subject}`,
        });
      } catch (error) {
        if (error instanceof FederatedCredentialLimit || error instanceof FederatedCredentialRejected) {
          const limit = error instanceof FederatedCredentialLimit;
          outcomes.push({
            type: ConditionType.FederatedCredentialReady,
            ok: false,
            reason: limit ? Reason.FederatedCredentialLimitReached : Reason.FederatedCredentialRejected,
            message: limit
              ? `identity ${resourceId} already has Azure's maximum of 20 federated credentials: use another identity or remove unused credentials`
              : `Azure refused the federated credential: ${error.message}`,
          });
          return finish();
        }
        if (error instanceof AzureRetryableError)
          throw new RetryAfterError(error.message, error.retryAfterMs ?? 5000, { cause: error });
        throw error;
      }

      // 4. ServiceAccount.
      step = ConditionType.ServiceAccountReady;
      const serviceAccount = await ensureServiceAccount(access, identity);
      outcomes.push(serviceAccount);

      // 5. Database role.
      step = ConditionType.DatabaseRoleReady;
      if (!server || !isTrue(server.status?.conditions, ConditionType.Ready)) {
        outcomes.push({
          type: ConditionType.DatabaseRoleReady,
          ok: false,
          reason: Reason.ServerNotReady,
          message: `EntraDatabaseServer ${access.spec.serverRef} is not Ready; see its status`,
        });
        return finish({ requeueAfterMs: 15_000 });
      }
      const role = roleNameOf(access);
      try {
        const result = await deps.database.ensure({
          server,
          role,
          principalId: identity.principalId,
          database: access.spec.database,
          memberOf: access.spec.memberOf ?? [],
          grants: access.spec.grants ?? [],
          applied: fields.applied ?? access.status?.applied,
          // One role per principal on a server: every other resource of this identity on this
          // server shares it, and what they ask for must survive this one's revokes.
          keep: (
            await admitted(
              deps.accesses
                .list()
                .filter(
                  (other) =>
                    other.metadata.uid !== access.metadata.uid &&
                    !other.metadata.deletionTimestamp &&
                    other.spec.serverRef === access.spec.serverRef &&
                    sameId(other.spec.identity.resourceId, resourceId),
                ),
            )
          ).map(requestOf),
        });
        fields.applied = result.applied;
        fields.connection = {
          host: server.spec.host,
          port: server.spec.port ?? DEFAULT_PORT,
          database: access.spec.database,
          user: result.user,
          sslMode: server.spec.sslMode ?? DEFAULT_SSL_MODE,
          tokenScope: server.spec.tokenScope ?? settings.postgresScope,
        };
        const missing = result.missing ?? [];
        if (missing.length > 0) {
          // What exists was granted (and is recorded above); what does not is reported, and the
          // reconcile fails so the work queue retries with backoff (and counts the error) until
          // it exists: tables often come later, from the app's own migrations.
          const message = missingObjectsMessage(result.user, missing);
          outcomes.push({
            type: ConditionType.DatabaseRoleReady,
            ok: false,
            reason: Reason.GrantTargetNotFound,
            message,
          });
          await finish();
          reported = new GrantTargetMissing(message);
          throw reported;
        }
        outcomes.push({
          type: ConditionType.DatabaseRoleReady,
          ok: true,
          reason: result.adoptedExisting ? Reason.Adopted : Reason.UpToDate,
          message: result.adoptedExisting
            ? `the identity already had role ${result.user} on this server; it is used instead of ${role}`
            : `role ${result.user} has the requested grants`,
        });
      } catch (error) {
        if (error === reported) throw error;
        if (error instanceof RoleConflictError) {
          outcomes.push({
            type: ConditionType.DatabaseRoleReady,
            ok: false,
            reason: Reason.RoleConflict,
            message: error.message,
          });
          return finish();
        }
        // The role was created before the failure: record it now, so the status names it and
        // a deletion drops it (cleanUp goes by status.applied). Reported at the reconcile edge.
        if (error instanceof RoleCreatedError) {
          fields.applied = error.applied;
          throw error.cause;
        }
        throw error;
      }
      return finish();
    }
  }

  return async function reconcile(key: string): Promise<ReconcileResult> {
    try {
      return await reconcileKey(key);
    } catch (error) {
      // Patched or written after it was deleted (its finalizer removed): not an error.
      if (error instanceof ObjectGone) {
        logger.debug({ kind: 'EntraDatabaseAccess', key }, 'gone while reconciling');
        return {};
      }
      // A FIC write handed back by the write pacing has its slot reserved: come back when it is
      // due. Not an error (no Reconciler error line, no error metric, no backoff growth).
      if (isPacedWrite(error)) {
        const retryAfterMs = retryAfterMsOf(error) ?? 1000;
        logger.debug({ kind: 'EntraDatabaseAccess', key, retryAfterMs }, 'FIC write paced');
        return { requeueAfterMs: retryAfterMs };
      }
      throw error;
    }
  };
}
