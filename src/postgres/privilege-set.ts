// The normalised form every grant diff works in: one entry per (role, database, object kind,
// schema, object name, concrete privilege), and one per (role, group) membership. `ALL` is expanded
// to the privileges it stands for on this server, and "every table in the schema" to the tables the
// catalog lists, so two privilege sets compare exactly, entry by entry. Pure: no I/O.
import { type Grant, type GrantTarget, PRIVILEGES_BY_TARGET, type Privilege } from '../api/types.ts';
import { InvalidPrivilegeError } from './identifiers.ts';

export type ObjectKind = 'database' | 'schema' | 'table' | 'sequence';
export type RelationKind = 'table' | 'sequence';
export type ConcretePrivilege = Exclude<Privilege, 'ALL'>;

/**
 * One privilege held by (or wanted for) one role on one object. For a database, `schema` is ''
 * and `name` is the database; for a schema, `schema` is its name and `name` is ''.
 */
export interface PrivilegeEntry {
  role: string;
  database: string;
  kind: ObjectKind;
  schema: string;
  name: string;
  privilege: ConcretePrivilege;
}

/** `role` is a direct member of `group` (pg_auth_members); cluster-wide. */
export interface Membership {
  role: string;
  group: string;
}

/** What currentPrivileges is asked to read: one role, in one database. */
export interface CatalogQuery {
  role: string;
  database: string;
  /** Schemas whose privileges and relations to read. */
  schemas: string[];
  /** Group roles whose existence to check. */
  groups: string[];
}

/** What the server holds for one role in one database, read from the catalogs. */
export interface PrivilegeSnapshot extends CatalogQuery {
  /** server_version_num: decides what ALL means on tables (MAINTAIN exists from 17). */
  serverVersionNum: number;
  roleExists: boolean;
  /** False only for a snapshot built by absentSnapshot (the database is gone). */
  databaseExists: boolean;
  existingSchemas: string[];
  existingGroups: string[];
  /** Groups the role is a direct member of (any grantor). */
  memberOf: string[];
  /** Tables (incl. views, materialized views, foreign and partitioned tables) and sequences in `schemas`. */
  relations: Array<{ schema: string; name: string; kind: RelationKind }>;
  /** Privileges granted directly to the role (any grantor) on the database, `schemas` and `relations`. */
  held: PrivilegeEntry[];
}

/** Something a desired grant names that the server does not have; its grants are left out. */
export interface MissingObject {
  kind: 'role' | 'group' | 'schema' | 'table';
  database: string;
  schema?: string;
  name: string;
}

export function describeMissing(missing: MissingObject): string {
  switch (missing.kind) {
    case 'role':
      return `role "${missing.name}" does not exist`;
    case 'group':
      return `group role "${missing.name}" does not exist`;
    case 'schema':
      return `schema "${missing.name}" does not exist in database "${missing.database}"`;
    case 'table':
      return `table "${missing.schema}"."${missing.name}" does not exist in database "${missing.database}"`;
  }
}

/** A snapshot for a database that no longer exists: nothing is held there, so nothing is revoked. */
export function absentSnapshot(query: CatalogQuery, serverVersionNum: number): PrivilegeSnapshot {
  return {
    ...query,
    serverVersionNum,
    roleExists: false,
    databaseExists: false,
    existingSchemas: [],
    existingGroups: [],
    memberOf: [],
    relations: [],
    held: [],
  };
}

export const KIND_TARGET: Record<ObjectKind, GrantTarget> = {
  database: 'database',
  schema: 'schema',
  table: 'tables',
  sequence: 'sequences',
};

/** MAINTAIN (table privilege) arrived in PostgreSQL 17; ALL means it only from there on. */
const MAINTAIN_SINCE = 170000;

/** The concrete privileges a list stands for on `target`, ALL expanded, in closed-list order. */
export function concretePrivileges(
  target: GrantTarget,
  privileges: readonly string[],
  serverVersionNum: number,
): ConcretePrivilege[] {
  const allowed = PRIVILEGES_BY_TARGET[target] as readonly string[];
  for (const privilege of privileges) {
    if (!allowed.includes(privilege)) throw new InvalidPrivilegeError(target, privilege);
  }
  const all = privileges.includes('ALL');
  return allowed.filter(
    (privilege): privilege is ConcretePrivilege =>
      privilege !== 'ALL' &&
      (all
        ? !(privilege === 'MAINTAIN' && serverVersionNum < MAINTAIN_SINCE)
        : privileges.includes(privilege)),
  );
}

export function entryKey(entry: PrivilegeEntry): string {
  return JSON.stringify([entry.role, entry.database, entry.kind, entry.schema, entry.name, entry.privilege]);
}

export function membershipKey(membership: Membership): string {
  return JSON.stringify([membership.role, membership.group]);
}

/** "Every table / sequence of this schema", as asked by a grant. */
export function wholeSchemaKey(role: string, database: string, kind: RelationKind, schema: string): string {
  return JSON.stringify([role, database, kind, schema]);
}

export interface Expansion {
  entries: PrivilegeEntry[];
  memberships: Membership[];
  /** wholeSchemaKey()s of grants without a table list, and of every sequences grant. */
  wholeSchemas: Set<string>;
  missing: MissingObject[];
}

export interface AccessTarget {
  role: string;
  database: string;
  memberOf: readonly string[];
  grants: readonly Grant[];
}

/**
 * Expands grants and memberships into entries against what `snapshot` says exists. Objects that do
 * not exist are reported as missing rather than expanded (nothing can be granted on them). Throws
 * when the snapshot was not asked about a schema or group the grants name: that is a caller bug,
 * and guessing would make the diff wrong.
 */
export function expand(target: AccessTarget, snapshot: PrivilegeSnapshot): Expansion {
  const { role, database } = target;
  if (snapshot.role !== role || snapshot.database !== database) {
    throw new Error(`snapshot of ${snapshot.role}@${snapshot.database} used for ${role}@${database}`);
  }
  const result: Expansion = { entries: [], memberships: [], wholeSchemas: new Set(), missing: [] };
  if (!snapshot.databaseExists) return result;
  if (!snapshot.roleExists) {
    if (target.memberOf.length > 0 || target.grants.length > 0) {
      result.missing.push({ kind: 'role', database, name: role });
    }
    return result;
  }
  const version = snapshot.serverVersionNum;
  const push = (kind: ObjectKind, schema: string, name: string, privileges: ConcretePrivilege[]): void => {
    for (const privilege of privileges)
      result.entries.push({ role, database, kind, schema, name, privilege });
  };

  for (const group of target.memberOf) {
    if (!snapshot.groups.includes(group)) throw new Error(`snapshot was not asked about group "${group}"`);
    if (snapshot.existingGroups.includes(group)) result.memberships.push({ role, group });
    else result.missing.push({ kind: 'group', database, name: group });
  }

  for (const grant of target.grants) {
    if (grant.target === 'database') {
      push('database', '', database, concretePrivileges('database', grant.privileges, version));
      continue;
    }
    const schema = grant.schema;
    if (!snapshot.schemas.includes(schema))
      throw new Error(`snapshot was not asked about schema "${schema}"`);
    if (!snapshot.existingSchemas.includes(schema)) {
      result.missing.push({ kind: 'schema', database, name: schema });
      continue;
    }
    if (grant.target === 'schema') {
      push('schema', schema, '', concretePrivileges('schema', grant.privileges, version));
    } else if (grant.target === 'tables') {
      const privileges = concretePrivileges('tables', grant.privileges, version);
      const inSchema = relationNames(snapshot, schema, 'table');
      if (grant.tables === undefined) {
        result.wholeSchemas.add(wholeSchemaKey(role, database, 'table', schema));
        for (const name of inSchema) push('table', schema, name, privileges);
      } else {
        for (const name of grant.tables) {
          if (inSchema.includes(name)) push('table', schema, name, privileges);
          else result.missing.push({ kind: 'table', database, schema, name });
        }
      }
    } else if (grant.target === 'sequences') {
      const privileges = concretePrivileges('sequences', grant.privileges, version);
      const inSchema = relationNames(snapshot, schema, 'sequence');
      // A list only in a recorded grant (RecordedSequencesGrant): the sequences that were in force.
      const listed = (grant as { sequences?: readonly string[] }).sequences;
      if (listed === undefined) result.wholeSchemas.add(wholeSchemaKey(role, database, 'sequence', schema));
      for (const name of listed === undefined ? inSchema : listed.filter((n) => inSchema.includes(n)))
        push('sequence', schema, name, privileges);
    } else {
      throw new InvalidPrivilegeError(String((grant as { target: unknown }).target), undefined);
    }
  }
  return result;
}

export function relationNames(snapshot: PrivilegeSnapshot, schema: string, kind: RelationKind): string[] {
  return snapshot.relations.filter((r) => r.schema === schema && r.kind === kind).map((r) => r.name);
}
