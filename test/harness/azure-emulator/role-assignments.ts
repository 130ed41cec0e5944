// In-memory Azure role assignments and the rules ARM applies to them (Microsoft.Authorization
// roleAssignments, api-version 2022-04-01), as pure functions of the store and a clock:
// who may do what where (effective assignments at or above a scope, propagation delay included),
// the PUT rules and errors, and the list filters. The routes (authorization-routes.ts) add HTTP.
//
// Sources (facts, in our words):
// - REST: learn.microsoft.com/rest/api/authorization/role-assignments (create, get, delete,
//   list-for-scope; `$filter=atScope()` = at or above the scope, `principalId eq '{id}'` = at,
//   above or below for that principal, no filter = at, above and below).
// - Errors: learn.microsoft.com/azure/role-based-access-control/troubleshooting —
//   RoleAssignmentExists (same principal, role and scope under another name), PrincipalNotFound
//   right after the principal was made (replication delay; setting principalType avoids it),
//   AuthorizationFailed ("does not have authorization or an ABAC condition not fulfilled to
//   perform action … over scope …"), and changes taking up to 10 minutes to take effect.
// - Limits: learn.microsoft.com/azure/role-based-access-control/troubleshoot-limits — 4,000 role
//   assignments per subscription (subscription, resource group and resource scopes), answered
//   "No more role assignments can be created" with code RoleAssignmentLimitExceeded. The page gives
//   no HTTP status; the emulator answers 400.
import { isAtOrAbove, normalizeScope, sameScope, subscriptionOf } from './arm-scopes.ts';
import { conditionAllows } from './role-conditions.ts';
import { isGuid, type RoleDefinition, roleById, roleDefinitionId, roleGrants } from './role-definitions.ts';

export const ROLE_ASSIGNMENT_TYPE = 'Microsoft.Authorization/roleAssignments';
export const MAX_ROLE_ASSIGNMENTS_PER_SUBSCRIPTION = 4000;
export const PRINCIPAL_TYPES = ['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device'] as const;

export interface RoleAssignment {
  /** The assignment's GUID, as the caller spelled it. */
  name: string;
  /** Normalized, in the caller's casing. */
  scope: string;
  role: RoleDefinition;
  principalId: string;
  principalType: string;
  description: string | undefined;
  condition: string | undefined;
  conditionVersion: string | undefined;
  createdAt: number;
  updatedAt: number;
  /** The caller's object ID (oid), or `emulator` for seeded assignments. */
  createdBy: string;
  /** Made through the control API: effective at once, whatever the propagation delay. */
  seeded: boolean;
}

/** A removed assignment, which keeps working until the removal has propagated. */
interface Removed {
  assignment: RoleAssignment;
  removedAt: number;
}

export interface ArmError {
  status: number;
  code: string;
  message: string;
}

function key(scope: string, name: string): string {
  return `${normalizeScope(scope).toLowerCase()}|${name.toLowerCase()}`;
}

export function roleAssignmentId(a: RoleAssignment): string {
  return `${a.scope === '/' ? '' : a.scope}/providers/Microsoft.Authorization/roleAssignments/${a.name}`;
}

/** The assignment as ARM returns it (2022-04-01). */
export function roleAssignmentResource(a: RoleAssignment) {
  return {
    id: roleAssignmentId(a),
    name: a.name,
    type: ROLE_ASSIGNMENT_TYPE,
    properties: {
      roleDefinitionId: roleDefinitionId(a.role, subscriptionOf(a.scope)),
      principalId: a.principalId,
      principalType: a.principalType,
      scope: a.scope,
      ...(a.description !== undefined ? { description: a.description } : {}),
      condition: a.condition ?? null,
      conditionVersion: a.conditionVersion ?? null,
      createdOn: new Date(a.createdAt).toISOString(),
      updatedOn: new Date(a.updatedAt).toISOString(),
      createdBy: a.createdBy,
      updatedBy: a.createdBy,
      delegatedManagedIdentityResourceId: null,
    },
  };
}

export interface RoleAssignmentProperties {
  roleDefinitionId: string;
  principalId: string;
  principalType: string | undefined;
  description: string | undefined;
  condition: string | undefined;
  conditionVersion: string | undefined;
}

function optionalText(p: Record<string, unknown>, name: string): string | undefined | ArmError {
  const value = p[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    return {
      status: 400,
      code: 'InvalidRequestContent',
      message: `The property '${name}' must be a string.`,
    };
  }
  return value;
}

/** The body's properties, or the 400 ARM answers for a malformed body. */
export function parseRoleAssignmentBody(body: unknown): RoleAssignmentProperties | ArmError {
  const properties =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>).properties : undefined;
  if (typeof properties !== 'object' || properties === null) {
    return {
      status: 400,
      code: 'InvalidRequestContent',
      message: "The request content is missing 'properties'.",
    };
  }
  const p = properties as Record<string, unknown>;
  const fields: Record<string, string | undefined> = {};
  for (const name of [
    'roleDefinitionId',
    'principalId',
    'principalType',
    'description',
    'condition',
    'conditionVersion',
  ]) {
    const value = optionalText(p, name);
    if (typeof value === 'object') return value;
    fields[name] = value;
  }
  if (!fields.roleDefinitionId) {
    return {
      status: 400,
      code: 'InvalidRequestContent',
      message: "The 'roleDefinitionId' property is required.",
    };
  }
  if (!fields.principalId) {
    return { status: 400, code: 'InvalidRequestContent', message: "The 'principalId' property is required." };
  }
  return {
    roleDefinitionId: fields.roleDefinitionId,
    principalId: fields.principalId,
    principalType: fields.principalType,
    description: fields.description,
    condition: fields.condition,
    conditionVersion: fields.conditionVersion,
  };
}

/** What the PUT rules need to know about the world beyond the store. */
export interface PutContext {
  now: number;
  tenantId: string;
  /** When the principal was made, or undefined when no such principal exists. */
  principalCreatedAt: number | undefined;
  /** The principal's real type (a managed identity is a ServicePrincipal). */
  principalActualType: string;
  /** Seconds a new principal is unknown to a PUT without principalType, and with it. */
  replicationSeconds: number;
  replicationSecondsWithType: number;
  maxPerSubscription: number;
}

function dashless(guid: string): string {
  return guid.replace(/-/g, '');
}

export class RoleAssignmentStore {
  readonly #byKey = new Map<string, RoleAssignment>();
  #removed: Removed[] = [];

  get(scope: string, name: string): RoleAssignment | undefined {
    return this.#byKey.get(key(scope, name));
  }

  all(): RoleAssignment[] {
    return [...this.#byKey.values()];
  }

  countInSubscription(subscriptionId: string): number {
    const wanted = subscriptionId.toLowerCase();
    let count = 0;
    for (const a of this.#byKey.values()) if (subscriptionOf(a.scope)?.toLowerCase() === wanted) count++;
    return count;
  }

  /**
   * ARM's rules for PUT `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`, in
   * ARM's order as far as it is known: the name, the role definition, an update that changes
   * what may not change, the principal (replication delay), a duplicate under another name, the
   * subscription's limit. Returns the error, or undefined when the PUT may go ahead.
   */
  checkPut(
    scope: string,
    name: string,
    props: RoleAssignmentProperties,
    ctx: PutContext,
  ): ArmError | undefined {
    if (!isGuid(name)) {
      return {
        status: 400,
        code: 'InvalidRoleAssignmentId',
        message: `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`,
      };
    }
    const role = roleById(props.roleDefinitionId);
    if (!role) {
      const guid = props.roleDefinitionId.split('/').pop() ?? props.roleDefinitionId;
      return {
        status: 400,
        code: 'RoleDefinitionDoesNotExist',
        message: `The specified role definition with ID '${dashless(guid)}' does not exist.`,
      };
    }
    if (
      props.principalType !== undefined &&
      !(PRINCIPAL_TYPES as readonly string[]).includes(props.principalType)
    ) {
      return {
        status: 400,
        code: 'InvalidPrincipalType',
        message: `The principal type '${props.principalType}' is not valid. Valid values are ${PRINCIPAL_TYPES.join(', ')}.`,
      };
    }
    const existing = this.get(scope, name);
    if (
      existing &&
      (existing.principalId.toLowerCase() !== props.principalId.toLowerCase() || existing.role.id !== role.id)
    ) {
      return {
        status: 400,
        code: 'RoleAssignmentUpdateNotPermitted',
        message: 'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.',
      };
    }
    const replication = props.principalType ? ctx.replicationSecondsWithType : ctx.replicationSeconds;
    const replicated =
      ctx.principalCreatedAt !== undefined && ctx.now - ctx.principalCreatedAt >= replication * 1000;
    if (!existing && !replicated) {
      return {
        status: 400,
        code: 'PrincipalNotFound',
        message:
          `Principal ${dashless(props.principalId)} does not exist in the directory ${ctx.tenantId}. Check that you ` +
          'have the correct principal ID. If you are creating this principal and then immediately assigning a role, ' +
          'this error might be related to a replication delay. In this case, set the role assignment principalType ' +
          'property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype',
      };
    }
    if (props.principalType !== undefined && props.principalType !== ctx.principalActualType && replicated) {
      return {
        status: 400,
        code: 'UnmatchedPrincipalType',
        message:
          `The PrincipalId '${dashless(props.principalId)}' has type '${ctx.principalActualType}' , which is ` +
          `different from specified PrincipalType '${props.principalType}'.`,
      };
    }
    if (!existing) {
      const duplicate = this.all().find(
        (a) =>
          sameScope(a.scope, scope) &&
          a.principalId.toLowerCase() === props.principalId.toLowerCase() &&
          a.role.id === role.id,
      );
      if (duplicate) {
        return {
          status: 409,
          code: 'RoleAssignmentExists',
          message: `The role assignment already exists. The ID of the existing role assignment is ${dashless(duplicate.name)}.`,
        };
      }
      const subscriptionId = subscriptionOf(scope);
      if (subscriptionId && this.countInSubscription(subscriptionId) >= ctx.maxPerSubscription) {
        return {
          status: 400,
          code: 'RoleAssignmentLimitExceeded',
          message: 'No more role assignments can be created.',
        };
      }
    }
    return undefined;
  }

  /** Creates or updates (description and condition only: checkPut refuses the rest). */
  put(
    scope: string,
    name: string,
    props: RoleAssignmentProperties,
    by: { now: number; createdBy: string; principalType: string; seeded?: boolean },
  ): { created: boolean; assignment: RoleAssignment } {
    const role = roleById(props.roleDefinitionId);
    if (!role) throw new Error(`unknown role definition ${props.roleDefinitionId}`);
    const existing = this.get(scope, name);
    const assignment: RoleAssignment = existing
      ? {
          ...existing,
          description: props.description,
          condition: props.condition,
          conditionVersion: props.conditionVersion,
          updatedAt: by.now,
        }
      : {
          name,
          scope: normalizeScope(scope),
          role,
          principalId: props.principalId,
          principalType: props.principalType ?? by.principalType,
          description: props.description,
          condition: props.condition,
          conditionVersion: props.conditionVersion,
          createdAt: by.now,
          updatedAt: by.now,
          createdBy: by.createdBy,
          seeded: by.seeded ?? false,
        };
    this.#byKey.set(key(scope, name), assignment);
    return { created: !existing, assignment };
  }

  /**
   * Removes; the assignment keeps working until `now` + the propagation delay, unless it was
   * seeded or is removed `immediately` (through the control API).
   */
  delete(scope: string, name: string, now: number, immediately = false): RoleAssignment | undefined {
    const k = key(scope, name);
    const assignment = this.#byKey.get(k);
    if (!assignment) return undefined;
    this.#byKey.delete(k);
    if (!immediately) this.#removed.push({ assignment, removedAt: now });
    return assignment;
  }

  /**
   * The principal's assignments that are in effect at `now`: made at least `propagationSeconds`
   * ago (seeded ones at once), plus removed ones whose removal has not propagated yet.
   */
  effective(principalId: string, now: number, propagationSeconds: number): RoleAssignment[] {
    const wanted = principalId.toLowerCase();
    const delay = propagationSeconds * 1000;
    const live = (a: RoleAssignment) => a.seeded || now - a.createdAt >= delay;
    this.#removed = this.#removed.filter((r) => now - r.removedAt < delay);
    return [
      ...[...this.#byKey.values()].filter((a) => a.principalId.toLowerCase() === wanted && live(a)),
      ...this.#removed
        .filter(
          (r) =>
            r.assignment.principalId.toLowerCase() === wanted && !r.assignment.seeded && live(r.assignment),
        )
        .map((r) => r.assignment),
    ];
  }

  clear(): void {
    this.#byKey.clear();
    this.#removed = [];
  }
}

export interface AccessQuery {
  principalId: string;
  action: string;
  kind: 'control' | 'data';
  scope: string;
  now: number;
  propagationSeconds: number;
  /** For role assignment writes and deletes: the role definition the ABAC condition looks at. */
  roleDefinitionGuid?: string;
}

/** The assignment that grants the access, if any (at or above the scope, condition fulfilled). */
export function grantingAssignment(store: RoleAssignmentStore, q: AccessQuery): RoleAssignment | undefined {
  return store
    .effective(q.principalId, q.now, q.propagationSeconds)
    .find(
      (a) =>
        isAtOrAbove(a.scope, q.scope) &&
        roleGrants(a.role, q.action, q.kind) &&
        (q.roleDefinitionGuid === undefined ||
          conditionAllows(a.condition, { action: q.action, roleDefinitionGuid: q.roleDefinitionGuid })),
    );
}

/** ARM's 403 when the caller may not perform `action` at `scope`. */
export function authorizationFailed(
  caller: { clientId: string; objectId: string },
  action: string,
  scope: string,
): ArmError {
  return {
    status: 403,
    code: 'AuthorizationFailed',
    message:
      `The client '${caller.clientId}' with object id '${caller.objectId}' does not have authorization or an ABAC ` +
      `condition not fulfilled to perform action '${action}' over scope '${scope}' or the scope is invalid. If ` +
      'access was recently granted, please refresh your credentials.',
  };
}

export type ListFilter = { atScope: boolean; principalId: string | undefined };

/**
 * Parses `$filter` of list-for-scope: `atScope()`, `principalId eq '{id}'`, `assignedTo('{id}')`
 * (the emulator has no groups, so it equals principalId), joined by `and`. Undefined: not one the
 * emulator understands (ARM answers such filters 400 too).
 */
export function parseListFilter(filter: string | undefined): ListFilter | undefined {
  const result: ListFilter = { atScope: false, principalId: undefined };
  if (filter === undefined || filter.trim() === '') return result;
  for (const term of filter.split(/\s+and\s+/i)) {
    const t = term.trim();
    if (/^atScope\(\)$/i.test(t)) {
      result.atScope = true;
      continue;
    }
    const match = /^principalId\s+eq\s+'([^']+)'$/i.exec(t) ?? /^assignedTo\('([^']+)'\)$/i.exec(t);
    if (!match) return undefined;
    result.principalId = match[1];
  }
  return result;
}

/** What list-for-scope returns for `filter` at `scope`. */
export function listAtScope(store: RoleAssignmentStore, scope: string, filter: ListFilter): RoleAssignment[] {
  return store.all().filter((a) => {
    if (filter.principalId && a.principalId.toLowerCase() !== filter.principalId.toLowerCase()) return false;
    const above = isAtOrAbove(a.scope, scope);
    return filter.atScope ? above : above || isAtOrAbove(scope, a.scope);
  });
}
