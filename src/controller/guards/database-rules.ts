// The admission rules of EntraDatabaseAccess beyond the binding ones (docs/design.md §5.3): the
// server exists and allows this namespace and database, memberOf and the role that receives the
// role's objects on deletion (ownedObjects.reassignTo) stay within what the server allows and never
// reach an administrative role or another identity's login role, and the role name is neither
// reserved nor another identity's. Pure: plain data and indexes in, a verdict out.
import type { BindingIndex } from '../../api/binding-index.ts';
import { bindingOf } from '../../api/binding-index.ts';
import { ACCESS_KIND, Reason } from '../../api/constants.ts';
import {
  type EntraDatabaseAccess,
  type EntraDatabaseServer,
  isReservedRoleName,
  reassignTargetOf,
} from '../../api/types.ts';
import {
  claimCameFirst,
  claimOf,
  type DatabaseRoleIndex,
  differentIdentity,
  type RoleClaim,
  roleNameOf,
} from '../database-role-index.ts';
import { matchesSelector } from '../label-selector.ts';
import {
  type BindingRuleInput,
  identityAllowedInNamespace,
  type NamespaceView,
  namespaceOptedIn,
  serviceAccountUnclaimed,
} from './binding-rules.ts';
import { firstRefusal, type Refusal, type Rule } from './chain.ts';

export interface DatabaseRuleInput extends BindingRuleInput {
  access: EntraDatabaseAccess;
  /** This resource's own claim (claimOf(access)). */
  claim: RoleClaim;
  server: EntraDatabaseServer | undefined;
  roles: DatabaseRoleIndex;
}

export function serverAllowsNamespace(server: EntraDatabaseServer, namespace: NamespaceView): boolean {
  const allowed = server.spec.allowedNamespaces;
  if (!allowed) return false;
  if (allowed.names?.includes(namespace.name)) return true;
  return allowed.selector !== undefined && matchesSelector(namespace.labels, allowed.selector);
}

const serverExists: Rule<DatabaseRuleInput> = ({ access, server }) =>
  server
    ? undefined
    : {
        reason: Reason.ServerNotFound,
        message: `EntraDatabaseServer ${access.spec.serverRef} does not exist: fix spec.serverRef or ask a platform admin to create the server`,
      };

const serverAllowsTheNamespace: Rule<DatabaseRuleInput> = ({ access, server, namespace }) =>
  server && namespace && !serverAllowsNamespace(server, namespace)
    ? {
        reason: Reason.ServerNotAllowed,
        message: `EntraDatabaseServer ${access.spec.serverRef} does not allow namespace ${access.metadata.namespace}: a platform admin must add it to spec.allowedNamespaces of the server`,
      }
    : undefined;

const databaseAllowed: Rule<DatabaseRuleInput> = ({ access, server }) => {
  const databases = server?.spec.allowedDatabases ?? [];
  if (databases.length === 1 && databases[0] === '*') return undefined;
  if (databases.includes(access.spec.database)) return undefined;
  return {
    reason: Reason.DatabaseNotAllowed,
    message: `database ${access.spec.database} is not in spec.allowedDatabases of EntraDatabaseServer ${access.spec.serverRef}: use one of [${databases.join(', ')}] or ask a platform admin to allow it`,
  };
};

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
  input: Pick<DatabaseRuleInput, 'access' | 'claim' | 'server' | 'roles'>,
): string | undefined {
  const { access, claim, server, roles } = input;
  const lower = group.toLowerCase();
  if (server && lower === server.spec.adminRole.toLowerCase()) return "the server's admin role";
  if (isReservedRoleName(group) && !lower.startsWith('pg_')) return 'an administrative role';
  if (lower === roleNameOf(access).toLowerCase()) return "the resource's own role";
  const owner = roles
    .loggingInAs(group)
    .find(
      (other) =>
        !(other.namespace === claim.namespace && other.name === claim.name) &&
        differentIdentity(other, claim),
    );
  return owner ? `the login role of EntraDatabaseAccess ${owner.namespace}/${owner.name}` : undefined;
}

const memberOfNeverGrantable: Rule<DatabaseRuleInput> = (input) => {
  for (const group of input.access.spec.memberOf ?? []) {
    const why = neverGrantable(group, input);
    if (why) {
      return {
        reason: Reason.MemberOfNotAllowed,
        message: `memberOf ${group} not allowed: it is ${why}, which entra-access never grants, whatever spec.allowedMemberOf of EntraDatabaseServer ${input.access.spec.serverRef} lists; remove it from spec.memberOf`,
      };
    }
  }
  return undefined;
};

const memberOfAllowed: Rule<DatabaseRuleInput> = ({ access, server }) => {
  const allowedGroups = server?.spec.allowedMemberOf ?? [];
  const refused = (access.spec.memberOf ?? []).filter((group) => !allowedGroups.includes(group));
  if (refused.length === 0) return undefined;
  return {
    reason: Reason.MemberOfNotAllowed,
    message: `memberOf ${refused.join(', ')} not allowed by EntraDatabaseServer ${access.spec.serverRef} (spec.allowedMemberOf: [${allowedGroups.join(', ')}]): remove it from spec.memberOf or ask a platform admin to allow it`,
  };
};

/**
 * spec.ownedObjects.reassignTo, with policy Reassign: the role that becomes the owner of the
 * role's objects when the resource is deleted. It is held to memberOf's rules: the server's
 * allowedMemberOf must list it, so a tenant can hand its objects only to a role it could join
 * anyway. That matters: a SECURITY DEFINER function the app made runs as its owner, so giving it to
 * a role is acting as that role. The same roles are never allowed (admin, reserved, the resource's
 * own, another identity's login role), and pg_* roles neither: they are for reading, not owning.
 * Run at admission and again at deletion, when the reassignment happens (the server's list may
 * have changed since).
 */
export function reassignTargetRefusal(
  input: Pick<DatabaseRuleInput, 'access' | 'claim' | 'server' | 'roles'>,
): Refusal | undefined {
  const { access, server } = input;
  const target = reassignTargetOf(access.spec);
  if (target === undefined) return undefined;
  const why = isReservedRoleName(target)
    ? 'a role reserved by PostgreSQL or Azure'
    : neverGrantable(target, input);
  if (why) {
    return {
      reason: Reason.ReassignTargetNotAllowed,
      message: `spec.ownedObjects.reassignTo ${target} not allowed: it is ${why}, which entra-access never gives objects to, whatever spec.allowedMemberOf of EntraDatabaseServer ${access.spec.serverRef} lists; name a group role of the app, or set spec.ownedObjects.policy to Keep`,
    };
  }
  const allowedGroups = server?.spec.allowedMemberOf ?? [];
  if (allowedGroups.includes(target)) return undefined;
  return {
    reason: Reason.ReassignTargetNotAllowed,
    message: `spec.ownedObjects.reassignTo ${target} not allowed by EntraDatabaseServer ${access.spec.serverRef} (spec.allowedMemberOf: [${allowedGroups.join(', ')}]): ask a platform admin to allow it, or set spec.ownedObjects.policy to Keep`,
  };
}

const reassignTargetAllowed: Rule<DatabaseRuleInput> = (input) => reassignTargetRefusal(input);

const roleNameNotReserved: Rule<DatabaseRuleInput> = ({ access, server }) => {
  const roleName = roleNameOf(access);
  if (!isReservedRoleName(roleName) && roleName.toLowerCase() !== server?.spec.adminRole.toLowerCase())
    return undefined;
  return {
    reason: Reason.RoleNameReserved,
    message: `role name ${roleName} is reserved (postgres, pg_*, azure_* and the server's admin role): set spec.roleName to another name`,
  };
};

/** One role per name on a server: another identity's earlier resource keeps the name. */
const roleNameFree: Rule<DatabaseRuleInput> = ({ access, claim, roles }) => {
  const taken = roles
    .requesting(access.spec.serverRef, claim.requested)
    .find(
      (other) =>
        !(other.namespace === claim.namespace && other.name === claim.name) &&
        differentIdentity(other, claim) &&
        claimCameFirst(other, claim),
    );
  if (!taken) return undefined;
  return {
    reason: Reason.RoleNameInUse,
    message: `role name ${claim.requested} on server ${access.spec.serverRef} is already used by EntraDatabaseAccess ${taken.namespace}/${taken.name}: set spec.roleName to another name`,
  };
};

/** The chain of EntraDatabaseAccess, in the order a user meets its problems. */
export const DATABASE_ACCESS_RULES: ReadonlyArray<Rule<DatabaseRuleInput>> = [
  namespaceOptedIn,
  identityAllowedInNamespace,
  serverExists,
  serverAllowsTheNamespace,
  databaseAllowed,
  memberOfNeverGrantable,
  memberOfAllowed,
  reassignTargetAllowed,
  roleNameNotReserved,
  roleNameFree,
  serviceAccountUnclaimed,
];

export type GuardVerdict = { ok: true; roleName: string } | ({ ok: false } & Refusal);

export interface AccessGuardInput {
  access: EntraDatabaseAccess;
  namespace: NamespaceView | undefined;
  server: EntraDatabaseServer | undefined;
  bindings: BindingIndex;
  roles: DatabaseRoleIndex;
}

/** Runs the EntraDatabaseAccess chain; a resource that passes gets its role name. */
export function checkAccess(input: AccessGuardInput): GuardVerdict {
  const binding = bindingOf(input.access, ACCESS_KIND);
  const claim = claimOf(input.access);
  if (!binding || !claim) {
    // The schema requires these fields; only a hand-made object can lack them.
    return {
      ok: false,
      reason: Reason.ServiceAccountConflict,
      message: 'spec.serviceAccountName and spec.identity.resourceId are required',
    };
  }
  const refusal = firstRefusal(DATABASE_ACCESS_RULES, { ...input, binding, claim });
  return refusal ? { ok: false, ...refusal } : { ok: true, roleName: claim.requested };
}
