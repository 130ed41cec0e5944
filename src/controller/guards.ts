// The admission checks an EntraDatabaseAccess must pass before anything is written to Azure or a
// database (DESIGN.md §5 step 1). These are the tenant-isolation rules: without them a tenant could
// federate its service account to any identity the operator can write, use any server, join any
// group role (azure_pg_admin), or take over another tenant's role. Pure: plain data in, a verdict out.
import { Reason } from '../api/constants.ts';
import { type EntraDatabaseAccess, type EntraDatabaseServer, isReservedRoleName } from '../api/types.ts';
import { identityAllowed } from '../azure/identity-id.ts';
import { createdAt } from '../kube/objects.ts';
import { matchesSelector } from './label-selector.ts';

export interface NamespaceView {
  name: string;
  optedIn: boolean;
  labels: Record<string, string>;
  /** The raw `entra-access.io/allowed-identities` annotation. */
  allowedIdentities?: string;
}

export interface GuardInput {
  access: EntraDatabaseAccess;
  namespace: NamespaceView | undefined;
  server: EntraDatabaseServer | undefined;
  /** Every other EntraDatabaseAccess in the cluster (this one excluded). */
  others: ReadonlyArray<EntraDatabaseAccess>;
}

export type GuardVerdict = { ok: true; roleName: string } | { ok: false; reason: Reason; message: string };

/** The PostgreSQL role an access resource asks for: spec.roleName, else metadata.name. */
export function roleNameOf(access: EntraDatabaseAccess): string {
  return access.spec.roleName || access.metadata.name || '';
}

function key(access: EntraDatabaseAccess): string {
  return `${access.metadata.namespace}/${access.metadata.name}`;
}

/**
 * Whether `other` came first. When two resources claim the same thing, the first keeps it and
 * only the later one is refused, so a conflict never takes down a working app.
 */
function cameFirst(other: EntraDatabaseAccess, access: EntraDatabaseAccess): boolean {
  const a = createdAt(other);
  const b = createdAt(access);
  if (a !== b) return a < b;
  return key(other) < key(access);
}

function sameIdentity(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** The role names an access resource logs in as: the one it asks for, and the one it was given. */
function loginRolesOf(access: EntraDatabaseAccess): string[] {
  return [roleNameOf(access), access.status?.applied?.role, access.status?.connection?.user].filter(
    (role): role is string => Boolean(role),
  );
}

/**
 * Group roles no access resource may join, whatever the server's allowedMemberOf says: the
 * superuser and administrative roles (postgres, azuresu, azure_*, the server's admin role — the
 * operator's own, which can read and change every tenant's data), the resource's own role, and a
 * role another identity logs in as (joining it is acting as that identity). allowedMemberOf is a
 * platform team's list, and one wrong entry must not hand a tenant the server or another tenant.
 * pg_* predefined roles (pg_read_all_data, pg_monitor) stay the platform team's choice.
 */
function neverGrantable(
  group: string,
  access: EntraDatabaseAccess,
  server: EntraDatabaseServer,
  others: ReadonlyArray<EntraDatabaseAccess>,
): string | undefined {
  const lower = group.toLowerCase();
  if (lower === server.spec.adminRole.toLowerCase()) return "the server's admin role";
  if (isReservedRoleName(group) && !lower.startsWith('pg_')) return 'an administrative role';
  if (lower === roleNameOf(access).toLowerCase()) return "the resource's own role";
  const owner = others.find(
    (other) =>
      !sameIdentity(other.spec.identity.resourceId, access.spec.identity.resourceId) &&
      loginRolesOf(other).some((role) => role.toLowerCase() === lower),
  );
  return owner ? `the login role of EntraDatabaseAccess ${key(owner)}` : undefined;
}

export function serverAllowsNamespace(server: EntraDatabaseServer, namespace: NamespaceView): boolean {
  const allowed = server.spec.allowedNamespaces;
  if (!allowed) return false;
  if (allowed.names?.includes(namespace.name)) return true;
  return allowed.selector !== undefined && matchesSelector(namespace.labels, allowed.selector);
}

export function checkAccess(input: GuardInput): GuardVerdict {
  const { access, namespace, server, others } = input;
  const ns = access.metadata.namespace ?? '';
  const fail = (reason: Reason, message: string): GuardVerdict => ({ ok: false, reason, message });

  if (!namespace?.optedIn) {
    return fail(
      Reason.NamespaceNotOptedIn,
      `namespace ${ns} is not opted in to entra-access: a platform admin must annotate it with entra-access.io/workload-identity=enabled`,
    );
  }
  const resourceId = access.spec.identity.resourceId;
  if (!identityAllowed(resourceId, namespace.allowedIdentities ?? '')) {
    return fail(
      Reason.IdentityNotAllowed,
      `identity ${resourceId} is not allowed in namespace ${ns}: a platform admin must add it (or a resource-group or subscription prefix ending in /*) to the namespace annotation entra-access.io/allowed-identities`,
    );
  }
  const serverName = access.spec.serverRef;
  if (!server) {
    return fail(
      Reason.ServerNotFound,
      `EntraDatabaseServer ${serverName} does not exist: fix spec.serverRef or ask a platform admin to create the server`,
    );
  }
  if (!serverAllowsNamespace(server, namespace)) {
    return fail(
      Reason.ServerNotAllowed,
      `EntraDatabaseServer ${serverName} does not allow namespace ${ns}: a platform admin must add it to spec.allowedNamespaces of the server`,
    );
  }
  const databases = server.spec.allowedDatabases ?? [];
  if (!(databases.length === 1 && databases[0] === '*') && !databases.includes(access.spec.database)) {
    return fail(
      Reason.DatabaseNotAllowed,
      `database ${access.spec.database} is not in spec.allowedDatabases of EntraDatabaseServer ${serverName}: use one of [${databases.join(', ')}] or ask a platform admin to allow it`,
    );
  }
  for (const group of access.spec.memberOf ?? []) {
    const why = neverGrantable(group, access, server, others);
    if (why) {
      return fail(
        Reason.MemberOfNotAllowed,
        `memberOf ${group} not allowed: it is ${why}, which entra-access never grants, whatever spec.allowedMemberOf of EntraDatabaseServer ${serverName} lists; remove it from spec.memberOf`,
      );
    }
  }
  const allowedGroups = server.spec.allowedMemberOf ?? [];
  const refused = (access.spec.memberOf ?? []).filter((group) => !allowedGroups.includes(group));
  if (refused.length > 0) {
    return fail(
      Reason.MemberOfNotAllowed,
      `memberOf ${refused.join(', ')} not allowed by EntraDatabaseServer ${serverName} (spec.allowedMemberOf: [${allowedGroups.join(', ')}]): remove it from spec.memberOf or ask a platform admin to allow it`,
    );
  }
  const roleName = roleNameOf(access);
  if (isReservedRoleName(roleName) || roleName.toLowerCase() === server.spec.adminRole.toLowerCase()) {
    return fail(
      Reason.RoleNameReserved,
      `role name ${roleName} is reserved (postgres, pg_*, azure_* and the server's admin role): set spec.roleName to another name`,
    );
  }
  const taken = others.find(
    (other) =>
      other.spec.serverRef === serverName &&
      roleNameOf(other).toLowerCase() === roleName.toLowerCase() &&
      !sameIdentity(other.spec.identity.resourceId, resourceId) &&
      cameFirst(other, access),
  );
  if (taken) {
    return fail(
      Reason.RoleNameInUse,
      `role name ${roleName} on server ${serverName} is already used by EntraDatabaseAccess ${key(taken)}: set spec.roleName to another name`,
    );
  }
  const conflicting = others.find(
    (other) =>
      other.metadata.namespace === ns &&
      other.spec.serviceAccountName === access.spec.serviceAccountName &&
      !sameIdentity(other.spec.identity.resourceId, resourceId) &&
      cameFirst(other, access),
  );
  if (conflicting) {
    return fail(
      Reason.ServiceAccountConflict,
      `service account ${ns}/${access.spec.serviceAccountName} is already bound to identity ${conflicting.spec.identity.resourceId} by EntraDatabaseAccess ${key(conflicting)}: a service account has one identity; use another serviceAccountName or the same identity`,
    );
  }
  return { ok: true, roleName };
}

/** The operator's own managed identity, as its pod knows it (AZURE_CLIENT_ID) or ARM reports it. */
export interface OperatorIdentity {
  clientId?: string;
  principalId?: string;
}

/**
 * The check that needs the identity resolved (after step 2, before any FIC is written): an access
 * resource may never bind the operator's own identity. That identity can write FICs on every app
 * identity and is the Entra admin of the servers, so a tenant federated to it would own them all;
 * only an allow-list that covers it (a resource-group prefix that happens to include it) lets a
 * resource get this far.
 */
export function checkResolvedIdentity(
  access: EntraDatabaseAccess,
  identity: { clientId: string; principalId: string },
  operator: OperatorIdentity,
): GuardVerdict {
  const same = (a: string | undefined, b: string) => Boolean(a) && a!.toLowerCase() === b.toLowerCase();
  if (same(operator.clientId, identity.clientId) || same(operator.principalId, identity.principalId)) {
    return {
      ok: false,
      reason: Reason.IdentityNotAllowed,
      message: `identity ${access.spec.identity.resourceId} is entra-access's own identity and can never be bound to a service account: use an app identity, and ask a platform admin to keep the operator's identity out of the namespace's entra-access.io/allowed-identities`,
    };
  }
  return { ok: true, roleName: roleNameOf(access) };
}
