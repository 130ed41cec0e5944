// The only way a name or a privilege reaches SQL text. Names (roles, databases, schemas, tables)
// are always double-quoted with inner quotes doubled, which makes any string that PostgreSQL can
// hold a single identifier, whatever quotes, semicolons or comment markers it contains; strings it
// cannot hold are refused rather than silently changed (PostgreSQL truncates long names, which
// could make two different names collide). Privileges are never quoted: they are keywords, so they
// come only from the closed lists in api/types.ts and are refused otherwise.
import { type GrantTarget, isPrivilegeFor, isReservedRoleName, PRIVILEGES_BY_TARGET } from '../api/types.ts';

/** NAMEDATALEN - 1: longer names are truncated by PostgreSQL, so they are refused here. */
export const MAX_IDENTIFIER_BYTES = 63;

export class InvalidIdentifierError extends Error {
  override readonly name = 'InvalidIdentifierError';
  readonly reason = 'InvalidIdentifier';
  readonly identifier: string;

  constructor(identifier: string, problem: string) {
    super(`${JSON.stringify(identifier)} cannot be a PostgreSQL identifier: ${problem}`);
    this.identifier = identifier;
  }
}

export class InvalidPrivilegeError extends Error {
  override readonly name = 'InvalidPrivilegeError';
  readonly reason = 'InvalidPrivilege';

  /** `privilege` undefined: the grant has none, or (with `problem`) is wrong in another way. */
  constructor(target: string | undefined, privilege: string | undefined, problem?: string) {
    const allowed = (PRIVILEGES_BY_TARGET as Record<string, readonly string[]>)[target ?? ''];
    super(
      target === undefined
        ? `a grant has no target; expected one of ${Object.keys(PRIVILEGES_BY_TARGET).join(', ')}`
        : !allowed
          ? `unknown grant target ${JSON.stringify(target)}; expected one of ${Object.keys(PRIVILEGES_BY_TARGET).join(', ')}`
          : problem !== undefined
            ? `a grant on ${target} has ${problem}`
            : privilege === undefined
              ? `a grant on ${target} lists no privileges; choose from ${allowed.join(', ')}`
              : `privilege ${JSON.stringify(privilege)} is not one of ${allowed.join(', ')} for ${target}`,
    );
  }
}

/** Why `name` cannot be stored as an identifier, or undefined when it can. */
export function identifierProblem(name: string): string | undefined {
  if (typeof name !== 'string') return 'not a string';
  if (name.length === 0) return 'empty (PostgreSQL has no zero-length identifiers)';
  if (name.includes('\0')) return 'contains a NUL character';
  // A lone UTF-16 surrogate would be sent as U+FFFD: a different name than the one asked for.
  if (!name.isWellFormed()) return 'contains an unpaired UTF-16 surrogate';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_IDENTIFIER_BYTES)
    return `${bytes} bytes long; PostgreSQL keeps at most ${MAX_IDENTIFIER_BYTES}`;
  return undefined;
}

export function assertIdentifier(name: string): void {
  const problem = identifierProblem(name);
  if (problem !== undefined) throw new InvalidIdentifierError(name, problem);
}

/** A role PostgreSQL or Azure reserves (`postgres`, `pg_*`, `azure_*`, ...). */
export class ReservedRoleError extends Error {
  override readonly name = 'ReservedRoleError';
  readonly reason = 'RoleNameReserved';
  readonly role: string;

  constructor(role: string) {
    super(
      `role "${role}" is reserved by PostgreSQL or Azure; entra-access never creates, grants to or drops it`,
    );
    this.role = role;
  }
}

/**
 * A role the operator may create, grant privileges to, or drop. The controller refuses reserved
 * names at admission already; this is the last line before SQL that could touch `postgres` itself.
 */
export function assertManageableRole(role: string): void {
  assertIdentifier(role);
  if (isReservedRoleName(role)) throw new ReservedRoleError(role);
}

/** `name` as one quoted identifier: `a"b` → `"a""b"`. Throws InvalidIdentifierError. */
export function quoteIdentifier(name: string): string {
  assertIdentifier(name);
  return `"${name.replaceAll('"', '""')}"`;
}

/** `schema.name` with both parts quoted. */
export function quoteQualified(schema: string, name: string): string {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`;
}

/**
 * The SQL keyword for a privilege on a target, after checking it against the closed list (input
 * may come from a resource the schema did not validate, e.g. an older CRD).
 */
export function privilegeKeyword(target: GrantTarget, privilege: string): string {
  if (!isPrivilegeFor(target, privilege)) throw new InvalidPrivilegeError(target, privilege);
  return privilege === 'ALL' ? 'ALL PRIVILEGES' : privilege;
}

/** A comma-separated privilege list for one target, each checked. */
export function privilegeList(target: GrantTarget, privileges: readonly string[]): string {
  if (privileges.length === 0) throw new InvalidPrivilegeError(target, undefined);
  return privileges.map((privilege) => privilegeKeyword(target, privilege)).join(', ');
}
