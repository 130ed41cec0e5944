// EntraDatabaseAccess as a kind of the reconcile skeleton (docs/design.md §5.1): its admission rules, its
// steps (identity, federated credential, ServiceAccount, database role) and its clean-up. What it
// shares with other kinds (the first three steps, the binding rules, the binding index) lives in
// steps/ and guards/; what is here is what only a database access has: a PostgreSQL role that
// several resources of one identity share on a server, and what becomes of the objects it owns
// when the last of them is deleted (spec.ownedObjects).
import type * as k8s from '@kubernetes/client-node';
import type { BindingIndex } from '../../api/binding-index.ts';
import { ACCESS_KIND, ACCESS_PLURAL, Reason } from '../../api/constants.ts';
import type {
  AppliedStatus,
  EntraDatabaseAccess,
  EntraDatabaseAccessStatus,
  EntraDatabaseServer,
} from '../../api/types.ts';
import { DEFAULT_DELETION_POLICY, reassignTargetOf } from '../../api/types.ts';
import { sameIdentityId } from '../../azure/identity-id.ts';
import type { ManagedIdentities } from '../../azure/managed-identities.ts';
import type { InformerCache } from '../../kube/informer-cache.ts';
import type { DatabaseOps, SharedRoleRequest } from '../database.ts';
import { claimOf, type DatabaseRoleIndex } from '../database-role-index.ts';
import { namespaceView, type OperatorIdentity } from '../guards/binding-rules.ts';
import type { Refusal } from '../guards/chain.ts';
import { checkAccess, reassignTargetRefusal } from '../guards/database-rules.ts';
import type { KindDefinition } from '../reconcile/object-reconciler.ts';
import type { IdentityState } from '../steps/binding-object.ts';
import { databaseRoleStep, type ReleasedRole } from '../steps/database-role.ts';
import { federatedCredentialStep } from '../steps/federated-credential.ts';
import { identityStep } from '../steps/identity.ts';
import { serviceAccountStep } from '../steps/service-account.ts';
import { deleteRecordedCredentials, markCredentialRetained } from './binding-cleanup.ts';

export interface DatabaseAccessKindDeps {
  core: k8s.CoreV1Api;
  accesses: InformerCache<EntraDatabaseAccess>;
  servers: InformerCache<EntraDatabaseServer>;
  namespaces: InformerCache<k8s.V1Namespace>;
  bindings: BindingIndex;
  roles: DatabaseRoleIndex;
  azure: Pick<ManagedIdentities, 'getIdentity' | 'ensureFederatedCredential' | 'deleteFederatedCredential'>;
  database: DatabaseOps;
  settings: {
    clusterName: string;
    issuer: string;
    postgresScope: string;
    /** The operator's own managed identity, which no resource may ever bind. */
    operator?: OperatorIdentity;
  };
}

type State = IdentityState;

/** A released role, and with spec.ownedObjects Reassign what went to the other role. */
type Released = ReleasedRole & { reassigned?: { objects: number; databases: string[] } };

/** The clean-up refused to reassign the role's objects to a role the rules do not allow (now). */
class ReassignTargetRefused extends Error {
  override readonly name = 'ReassignTargetRefused';
  readonly reason: string;

  constructor(refusal: Refusal) {
    super(refusal.message);
    this.reason = refusal.reason;
  }
}

function requestOf(access: EntraDatabaseAccess): SharedRoleRequest {
  return {
    database: access.spec.database,
    memberOf: access.spec.memberOf ?? [],
    grants: access.spec.grants ?? [],
  };
}

export function databaseAccessKind(
  deps: DatabaseAccessKindDeps,
): KindDefinition<EntraDatabaseAccess, EntraDatabaseAccessStatus, State> {
  const { accesses, servers, namespaces, bindings, roles } = deps;

  async function check(access: EntraDatabaseAccess): Promise<Refusal | undefined> {
    const verdict = checkAccess({
      access,
      namespace: namespaceView(await namespaces.get(access.metadata.namespace ?? '')),
      server: await servers.get(access.spec.serverRef),
      bindings,
      roles,
    });
    return verdict.ok ? undefined : verdict;
  }

  /**
   * Those of `candidates` that pass the admission rules now. Only they may keep privileges on a
   * shared role: a resource the rules refuse (an identity its namespace may not use, a server that
   * does not allow it) must not hold on to what another tenant's resource revokes.
   */
  async function admitted(candidates: EntraDatabaseAccess[]): Promise<EntraDatabaseAccess[]> {
    const result: EntraDatabaseAccess[] = [];
    for (const other of candidates) if (!(await check(other))) result.push(other);
    return result;
  }

  /**
   * The other live access resources on `server` among `keys` (found through an index, so a
   * reconcile reads the few that can share its role, not every resource on the server).
   */
  async function othersOnServer(
    access: EntraDatabaseAccess,
    server: string,
    keys: ReadonlyArray<{ namespace: string; name: string }>,
  ): Promise<EntraDatabaseAccess[]> {
    const others = new Map<string, EntraDatabaseAccess>();
    for (const { namespace, name } of keys) {
      if (namespace === access.metadata.namespace && name === access.metadata.name) continue;
      const other = await accesses.get(name, namespace);
      if (other && !other.metadata.deletionTimestamp && other.spec.serverRef === server)
        others.set(`${namespace}/${name}`, other);
    }
    return [...others.values()];
  }

  /** The other access resources of `identityResourceId` on `server`: one role per principal. */
  function ofIdentityOnServer(access: EntraDatabaseAccess, server: string, identityResourceId: string) {
    const keys = bindings.onIdentity(identityResourceId).filter((binding) => binding.kind === ACCESS_KIND);
    return othersOnServer(access, server, keys).then((others) =>
      others.filter((other) => sameIdentityId(other.spec.identity.resourceId, identityResourceId)),
    );
  }

  async function sharers(
    access: EntraDatabaseAccess,
    server: string,
    identityResourceId: string,
  ): Promise<SharedRoleRequest[]> {
    return (await admitted(await ofIdentityOnServer(access, server, identityResourceId))).map(requestOf);
  }

  /**
   * Takes back the role `applied` records. Sharers: those that applied the role, and the admitted
   * ones of the same identity on this server that have not yet (one role per principal: they are
   * about to use it). Dropping the role under one of the latter would leave it Ready without a
   * role, or with a NOLOGIN one. With sharers, only this resource's grants are revoked.
   * `reassignTo` (the clean-up's, with spec.ownedObjects Reassign) receives what the role owns
   * when the role is dropped; without it (Keep, and always after an identity change, where the
   * app lives on) a role that owns objects is kept without login.
   */
  async function release(
    access: EntraDatabaseAccess,
    applied: AppliedStatus,
    identityResourceId: string,
    reassignTo?: string,
  ): Promise<Released | undefined> {
    const server = applied.server ? await servers.get(applied.server) : undefined;
    if (!applied.role || !applied.server || !server) return undefined;
    const appliedIt = (await othersOnServer(access, applied.server, roles.loggingInAs(applied.role))).filter(
      (other) => other.status?.applied?.role === applied.role,
    );
    const coming = await admitted(
      (await ofIdentityOnServer(access, applied.server, identityResourceId)).filter(
        (other) => other.status?.applied?.role !== applied.role,
      ),
    );
    const shared = appliedIt.length > 0 || coming.length > 0;
    if (!shared && reassignTo !== undefined) {
      // Checked again now, when the objects would change hands, against the server as it is.
      const claim = claimOf(access);
      const refusal = claim && reassignTargetRefusal({ access, claim, server, roles });
      if (refusal) throw new ReassignTargetRefused(refusal);
    }
    const result = await deps.database.remove({
      server,
      applied,
      dropRole: !shared,
      keep: [...(await admitted(appliedIt)), ...coming].map(requestOf),
      ...(!shared && reassignTo !== undefined ? { reassignTo } : {}),
    });
    return { ...result, shared };
  }

  return {
    kind: ACCESS_KIND,
    plural: ACCESS_PLURAL,
    get: (namespace, name) => accesses.get(name, namespace),
    admit: check,
    initialState: () => ({}),
    readyMessage: 'identity, federated credential, service account and database role are ready',
    // Written before the FIC in force named its identity and the role its principal: both were
    // the status's identity's. Spelt out in the first write, before an identity change moves it.
    migrateStatus(access) {
      const status = access.status;
      const fields: Partial<EntraDatabaseAccessStatus> = {};
      const fic = status?.federatedCredential;
      if (fic?.name && !fic.identityResourceId && status?.identity?.resourceId)
        fields.federatedCredential = { ...fic, identityResourceId: status.identity.resourceId };
      if (status?.applied?.role && !status.applied.principalId && status.identity?.principalId)
        fields.applied = { ...status.applied, principalId: status.identity.principalId };
      return fields;
    },
    steps: [
      identityStep({ azure: deps.azure, operator: deps.settings.operator ?? {} }),
      federatedCredentialStep({
        kind: ACCESS_KIND,
        azure: deps.azure,
        bindings,
        clusterName: deps.settings.clusterName,
        issuer: deps.settings.issuer,
      }),
      serviceAccountStep({ core: deps.core }),
      databaseRoleStep({
        database: deps.database,
        server: (name) => servers.get(name),
        sharers,
        release,
        defaultScope: deps.settings.postgresScope,
      }),
    ],
    async cleanUp(access, context) {
      if ((access.spec.deletionPolicy ?? DEFAULT_DELETION_POLICY) === 'Orphan') {
        context.talkingTo('kubernetes');
        await markCredentialRetained(access, deps.core);
        return;
      }
      const applied = access.status?.applied;
      if (applied?.role) {
        context.talkingTo('postgres');
        const identity = access.status?.identity?.resourceId ?? access.spec.identity.resourceId;
        const reassignTo = reassignTargetOf(access.spec);
        const released = await release(access, applied, identity, reassignTo);
        if (released && !released.shared && !released.dropped) {
          context.warn(
            Reason.RoleOwnsObjects,
            reassignTo === undefined
              ? `role ${applied.role} owns objects (${released.ownedObjects.join(', ')}); it was kept with NOLOGIN and no data was dropped`
              : `the objects of role ${applied.role} went to ${reassignTo}, but the role is still referenced (${released.ownedObjects.join(', ')}: a privilege someone else granted it); it was kept with NOLOGIN`,
          );
        } else if (released?.reassigned && released.reassigned.objects > 0) {
          context.log.info(
            { role: applied.role, reassignTo, ...released.reassigned },
            'reassigned the objects of the role, then dropped it',
          );
        }
      }
      context.talkingTo('azure');
      await deleteRecordedCredentials(access, { kind: ACCESS_KIND, azure: deps.azure, bindings });
    },
  };
}
