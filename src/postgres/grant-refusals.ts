// A GRANT or REVOKE the operator's admin role may not give, and what to tell the user about it.
// PostgreSQL refuses such a statement in one of two ways: with an error, 42501 "permission denied
// for table t" (the admin holds no privilege at all on the object, or no ADMIN OPTION on a group),
// or, worse, with success and a WARNING: 01007 "no privileges were granted for "t"" / "not all
// privileges were granted for "t"" (the admin holds a privilege on it, but not WITH GRANT OPTION),
// and 01006 "no privileges could be revoked" / "not all privileges could be revoked" for a REVOKE.
// A statement that ends either way granted (or revoked) less than asked: both are refusals here,
// never success (docs/design.md §6). Pure: roles.ts runs the statements and looks up the owners.
import type { PlannedStatement } from './grant-plan.ts';
import type { Membership, ObjectKind, PrivilegeEntry } from './privilege-set.ts';

/** insufficient_privilege: the statement failed. */
export const PERMISSION_DENIED = '42501';
/** warning_privilege_not_granted: a GRANT succeeded with fewer privileges than asked, or none. */
export const PRIVILEGE_NOT_GRANTED = '01007';
/** warning_privilege_not_revoked: a REVOKE succeeded with fewer privileges than asked, or none. */
export const PRIVILEGE_NOT_REVOKED = '01006';

/** True for a SQLSTATE that means the server refused (part of) a GRANT or REVOKE. */
export function isRefusalCode(code: string | undefined): boolean {
  return code === PERMISSION_DENIED || code === PRIVILEGE_NOT_GRANTED || code === PRIVILEGE_NOT_REVOKED;
}

/** The object a refused statement was about; a membership is about the group `role`. */
export interface RefusedObject {
  kind: ObjectKind | 'role';
  /** The database the object is in ('' for a role). */
  database: string;
  /** '' for a database or a role. */
  schema: string;
  /** '' for a schema. */
  name: string;
}

export interface GrantRefusal {
  action: 'grant' | 'revoke';
  /** The role the privileges were for (the grantee). */
  role: string;
  object: RefusedObject;
  /** The privileges asked for; empty for a membership. */
  privileges: string[];
  /** PERMISSION_DENIED, PRIVILEGE_NOT_GRANTED or PRIVILEGE_NOT_REVOKED. */
  code: string;
  /** What PostgreSQL said. */
  serverMessage: string;
  /** The object's owner, as the catalog says; undefined for a role or an object gone meanwhile. */
  owner?: string | undefined;
  /** The statement refused: one object (and, for a partial warning, one privilege). */
  statement: PlannedStatement;
}

/** What the refusal advice depends on: who the operator is on this server. */
export interface AdminFacts {
  /** current_user: the server's spec.adminRole. */
  role: string;
  /** Whether it is a member of azure_pg_admin; undefined when the server has no such role. */
  azurePgAdmin: boolean | undefined;
}

/** A refusal of `statement`, from its entries or membership. */
export function refusalOf(
  statement: PlannedStatement,
  code: string,
  serverMessage: string,
  owner?: string,
): GrantRefusal {
  const entries: PrivilegeEntry[] = statement.entries ?? [];
  const membership: Membership | undefined = statement.membership;
  const first = entries[0];
  if (!first) {
    if (!membership) throw new Error(`statement has neither entries nor a membership: ${statement.sql}`);
    return {
      action: statement.action,
      role: membership.role,
      object: { kind: 'role', database: '', schema: '', name: membership.group },
      privileges: [],
      code,
      serverMessage,
      owner,
      statement,
    };
  }
  return {
    action: statement.action,
    role: first.role,
    object: { kind: first.kind, database: first.database, schema: first.schema, name: first.name },
    privileges: [...new Set(entries.map((entry) => entry.privilege))],
    code,
    serverMessage,
    owner,
    statement,
  };
}

/** `table "app"."orders"`, `schema "app"`, `database "orders"`, `role "readers"`. */
export function describeObject(object: RefusedObject): string {
  const q = (name: string): string => `"${name}"`;
  switch (object.kind) {
    case 'database':
      return `database ${q(object.name)}`;
    case 'schema':
      return `schema ${q(object.schema)}`;
    case 'table':
      return `table ${q(object.schema)}.${q(object.name)}`;
    case 'sequence':
      return `sequence ${q(object.schema)}.${q(object.name)}`;
    case 'role':
      return `role ${q(object.name)}`;
  }
}

/** Refusals of one object (its privileges refused one by one) as one. Order: as first seen. */
export function mergeRefusals(refusals: readonly GrantRefusal[]): GrantRefusal[] {
  const merged = new Map<string, GrantRefusal>();
  for (const refusal of refusals) {
    const key = JSON.stringify([refusal.action, refusal.role, refusal.object]);
    const seen = merged.get(key);
    if (!seen) {
      merged.set(key, { ...refusal, privileges: [...refusal.privileges] });
      continue;
    }
    for (const privilege of refusal.privileges)
      if (!seen.privileges.includes(privilege)) seen.privileges.push(privilege);
    if (!seen.serverMessage.includes(refusal.serverMessage))
      seen.serverMessage = `${seen.serverMessage}; ${refusal.serverMessage}`;
    seen.owner ??= refusal.owner;
  }
  return [...merged.values()];
}

/** One refusal as a phrase: what, on what, whose, and what PostgreSQL said. */
export function describeRefusal(refusal: GrantRefusal): string {
  const what =
    refusal.object.kind === 'role'
      ? `membership in ${describeObject(refusal.object)}`
      : `${refusal.privileges.join(', ')} on ${describeObject(refusal.object)}`;
  const where =
    refusal.object.kind === 'role' || refusal.object.kind === 'database'
      ? ''
      : ` in database "${refusal.object.database}"`;
  const owner = refusal.owner === undefined ? '' : ` (owner "${refusal.owner}")`;
  const verb = refusal.action === 'grant' ? '' : 'revoking ';
  return `${verb}${what}${where}${owner}: ${refusal.serverMessage}`;
}

/** Most refusals a message lists; the rest are counted. */
const MAX_LISTED = 8;

/**
 * The DatabaseRoleReady message for refused grants: each object with its owner, then what to do,
 * as Azure documents it (security-access-control, "Improved control for azure_pg_admin"): the
 * admin is a member of azure_pg_admin, whose members may manage roles and access objects owned by
 * any non-restricted role. Stable for the same refusals, so a retry writes no new status.
 */
export function grantNotPermittedMessage(
  role: string,
  refusals: readonly GrantRefusal[],
  admin: AdminFacts,
  /** `kept`: the rest was applied (a reconcile); else the database's changes were rolled back. */
  rest: 'kept' | { rolledBack: string } = 'kept',
): string {
  const merged = mergeRefusals(refusals);
  const listed = merged.slice(0, MAX_LISTED).map(describeRefusal);
  if (merged.length > MAX_LISTED) listed.push(`and ${merged.length - MAX_LISTED} more`);
  const grants = merged.some((r) => r.object.kind !== 'role');
  const groups = merged.some((r) => r.object.kind === 'role');
  const a = `"${admin.role}"`;
  const why =
    admin.azurePgAdmin === true
      ? `The operator's admin role ${a} is a member of azure_pg_admin; on Azure its members may manage roles and access objects owned by any non-restricted role, so an owner it is refused on is a restricted role (such as azuresu): grant on objects your own roles own, or remove these from spec.grants${groups ? ' and spec.memberOf' : ''}.`
      : `The operator's admin role ${a} is not a member of azure_pg_admin: on Azure, spec.adminRole of the EntraDatabaseServer must be a Microsoft Entra admin of the server (those are members of azure_pg_admin, whose members may manage roles and access objects owned by any non-restricted role).`;
  const elsewhere = [
    grants ? `the owner grants ${a} these privileges WITH GRANT OPTION, or membership in the owner role` : '',
    groups ? `a role holding ADMIN OPTION on the group grants it to ${a} WITH ADMIN OPTION` : '',
  ]
    .filter(Boolean)
    .join('; ');
  const after =
    rest === 'kept'
      ? 'What was granted is in force and recorded in status.applied'
      : `Nothing was changed in database "${rest.rolledBack}"`;
  return `role "${role}": not permitted: ${listed.join('; ')}. ${why} On a server without azure_pg_admin, ${elsewhere}. ${after}; the controller retries.`;
}

/**
 * Statements of one database the server refused, when the caller asked for all or nothing
 * (deletion, a shared role's release): the database's transaction was rolled back.
 */
export class GrantNotPermittedError extends Error {
  override readonly name = 'GrantNotPermittedError';
  readonly reason = 'GrantNotPermitted';
  readonly database: string;
  readonly refusals: GrantRefusal[];

  constructor(database: string, refusals: GrantRefusal[], admin: AdminFacts) {
    const role = refusals[0]?.role ?? '';
    super(grantNotPermittedMessage(role, refusals, admin, { rolledBack: database }));
    this.database = database;
    this.refusals = refusals;
  }
}
