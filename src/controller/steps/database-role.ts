// Step DatabaseRoleReady (docs/design.md §5.2): the Entra principal's PostgreSQL role exists on the
// server, mapped to the identity, with exactly the memberships and grants the spec asks for (what
// an earlier generation granted and no longer lists is revoked). After an identity change the role
// of the old principal is released first: one role per principal, never two.
import { ConditionType, Reason } from '../../api/constants.ts';
import type {
  AppliedStatus,
  EntraDatabaseAccess,
  EntraDatabaseAccessStatus,
  EntraDatabaseServer,
} from '../../api/types.ts';
import { DEFAULT_PORT, DEFAULT_SSL_MODE } from '../../api/types.ts';
import { isTrue } from '../../kube/conditions.ts';
import { grantNotPermittedMessage } from '../../postgres/grant-refusals.ts';
import { PrincipalNotValidatedError, RoleConflictError } from '../../postgres/roles.ts';
import { type DatabaseOps, RoleCreatedError, type SharedRoleRequest } from '../database.ts';
import { roleNameOf } from '../database-role-index.ts';
import type { Step } from '../reconcile/object-reconciler.ts';
import { type IdentityState, resolvedIdentity } from './binding-object.ts';
import { missingObjectsMessage } from './missing-objects.ts';

/** A role released because its resource no longer uses it: dropped, or kept because it owns objects. */
export interface ReleasedRole {
  dropped: boolean;
  ownedObjects: string[];
  /** Whether other resources still use it (then only this one's grants were revoked). */
  shared: boolean;
}

export interface DatabaseRoleStepDeps {
  database: Pick<DatabaseOps, 'ensure'>;
  server(name: string): Promise<EntraDatabaseServer | undefined>;
  /** What the other admitted resources of `identityResourceId` on `server` ask of the shared role. */
  sharers(
    access: EntraDatabaseAccess,
    server: string,
    identityResourceId: string,
  ): Promise<SharedRoleRequest[]>;
  /**
   * Takes back what `applied` records for `access` (the identity's role on that server);
   * undefined when that server is gone.
   */
  release(
    access: EntraDatabaseAccess,
    applied: AppliedStatus,
    identityResourceId: string,
  ): Promise<ReleasedRole | undefined>;
  /** The token scope when the server names none (by the operator's cloud). */
  defaultScope: string;
}

/** The first retry after a refused grant or an unvalidated principal; the work queue's backoff grows from it. */
export const DATABASE_RETRY_MS = 5_000;

/**
 * The DatabaseRoleReady message when pgaadauth could not validate the identity (Azure's XX000
 * "Could not validate AAD user …"): the three causes Azure has for it, and what to do about each.
 */
export function principalNotValidatedMessage(
  error: PrincipalNotValidatedError,
  tenantId: string | undefined,
): string {
  return (
    `the server could not validate identity ${error.principalId} with Microsoft Entra ID ` +
    `(pgaadauth_create_principal_with_oid: ${error.serverMessage}). Causes: the identity was created ` +
    'moments ago and is not yet replicated to Microsoft Graph (this clears by itself, usually within ' +
    'minutes); the server cannot reach Microsoft Entra ID (with private networking, allow outbound ' +
    'HTTPS from the server to the AzureActiveDirectory service tag, and let it resolve ' +
    "graph.microsoft.com through your DNS); or the identity is not in the tenant the server's " +
    `Microsoft Entra authentication uses${tenantId ? ` (the identity's tenant is ${tenantId})` : ''}. ` +
    'No role was created; the controller retries with backoff'
  );
}

/** The principal a recorded role was made for (older statuses did not record it: the identity's). */
function appliedPrincipal(status: EntraDatabaseAccessStatus | undefined): string | undefined {
  return status?.applied?.principalId ?? status?.identity?.principalId;
}

export function databaseRoleStep<State extends IdentityState>(
  deps: DatabaseRoleStepDeps,
): Step<EntraDatabaseAccess, EntraDatabaseAccessStatus, State> {
  return {
    condition: ConditionType.DatabaseRoleReady,
    system: 'postgres',
    async run({ object: access, state, fields, warn }) {
      const identity = resolvedIdentity(state);
      let applied = access.status?.applied;

      // The identity changed: the old principal's role goes first (one role per principal). It was
      // made on the server recorded in `applied`, which is not necessarily the one the spec names
      // now: never drop a role of that name on another server.
      const previousPrincipal = appliedPrincipal(access.status);
      if (applied?.role && previousPrincipal && previousPrincipal !== identity.principalId) {
        const oldIdentity = access.status?.identity?.resourceId ?? access.spec.identity.resourceId;
        const released = await deps.release(access, applied, oldIdentity);
        if (released) {
          if (!released.shared && !released.dropped) {
            warn(
              Reason.RoleOwnsObjects,
              `role ${applied.role} of the previous identity owns objects (${released.ownedObjects.join(', ')}); it was kept with NOLOGIN and no data was dropped. The new identity needs another spec.roleName`,
            );
          }
          applied = undefined;
          fields.applied = undefined;
        }
      }

      const server = await deps.server(access.spec.serverRef);
      if (!server || !isTrue(server.status?.conditions, ConditionType.Ready)) {
        return {
          ok: false,
          reason: Reason.ServerNotReady,
          message: `EntraDatabaseServer ${access.spec.serverRef} is not Ready; see its status`,
          requeueAfterMs: 15_000,
        };
      }
      const role = roleNameOf(access);
      let result: Awaited<ReturnType<DatabaseOps['ensure']>>;
      try {
        result = await deps.database.ensure({
          server,
          role,
          principalId: identity.principalId,
          database: access.spec.database,
          memberOf: access.spec.memberOf ?? [],
          grants: access.spec.grants ?? [],
          applied,
          // One role per principal on a server: every other resource of this identity on this
          // server shares it, and what they ask for must survive this one's revokes.
          keep: await deps.sharers(access, access.spec.serverRef, access.spec.identity.resourceId),
        });
      } catch (error) {
        if (error instanceof RoleConflictError) {
          return { ok: false, reason: Reason.RoleConflict, message: error.message };
        }
        if (error instanceof PrincipalNotValidatedError) {
          return {
            ok: false,
            reason: Reason.PrincipalNotValidated,
            message: principalNotValidatedMessage(error, identity.tenantId),
            retryAfterMs: DATABASE_RETRY_MS,
          };
        }
        // The role was created before the failure: record it now, so the status names it and a
        // deletion drops it (the clean-up goes by status.applied). Reported by the skeleton.
        if (error instanceof RoleCreatedError) {
          fields.applied = error.applied;
          throw error.cause;
        }
        throw error;
      }
      fields.applied = result.applied;
      fields.connection = {
        host: server.spec.host,
        port: server.spec.port ?? DEFAULT_PORT,
        database: access.spec.database,
        user: result.user,
        sslMode: server.spec.sslMode ?? DEFAULT_SSL_MODE,
        tokenScope: server.spec.tokenScope ?? deps.defaultScope,
      };
      const missing = result.missing ?? [];
      const refused = result.refused ?? [];
      if (refused.length > 0) {
        // What the server granted is in force and recorded above; what it refused is not, and
        // the resource is not Ready: a GRANT that "succeeded" with a warning leaves the app
        // refused just the same.
        const admin = result.admin ?? { role: server.spec.adminRole, azurePgAdmin: undefined };
        return {
          ok: false,
          reason: Reason.GrantNotPermitted,
          message:
            grantNotPermittedMessage(result.user, refused, admin) +
            (missing.length > 0 ? `. Also: ${missingObjectsMessage(result.user, missing)}` : ''),
          retryAfterMs: DATABASE_RETRY_MS,
        };
      }
      if (missing.length > 0) {
        // What exists was granted (and is recorded above); what does not is reported, and the
        // reconcile fails so the work queue retries with backoff (and counts the error) until it
        // exists: tables often come later, from the app's own migrations.
        return {
          ok: false,
          reason: Reason.GrantTargetNotFound,
          message: missingObjectsMessage(result.user, missing),
          retryAfterMs: 5_000,
        };
      }
      return {
        ok: true,
        reason: result.adoptedExisting ? Reason.Adopted : Reason.UpToDate,
        message: result.adoptedExisting
          ? `the identity already had role ${result.user} on this server; it is used instead of ${role}`
          : `role ${result.user} has the requested grants`,
      };
    },
  };
}
