// Reads what the server actually holds for one role in one database, so that planGrants diffs
// against reality: a reconcile with no change then plans, and runs, no GRANT or REVOKE at all.
// Privileges come from aclexplode() over the ACL columns, i.e. only what is granted to the role
// itself (by any grantor). has_*_privilege() would also count PUBLIC and inherited privileges,
// which would hide a missing direct grant (CONNECT is granted to PUBLIC by default) and make a
// revoke look needed where there is nothing of ours to revoke.
import type pg from 'pg';
import { PRIVILEGES_BY_TARGET } from '../api/types.ts';
import type {
  ConcretePrivilege,
  ObjectKind,
  PrivilegeEntry,
  PrivilegeSnapshot,
  RelationKind,
} from './privilege-set.ts';
import { type CatalogQuery, entryKey, KIND_TARGET } from './privilege-set.ts';

/** A pool, or a client checked out of one, or a plain client: anything that runs a query. */
export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

interface BasicsRow {
  database: string;
  version: number;
  role_oid: string | null;
  groups: string[];
  schemas: string[];
}

const BASICS = `
  SELECT current_database()::text AS database,
         current_setting('server_version_num')::int AS version,
         (SELECT oid FROM pg_roles WHERE rolname = $1) AS role_oid,
         ARRAY(SELECT rolname::text FROM pg_roles WHERE rolname = ANY($2::text[])) AS groups,
         ARRAY(SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($3::text[])) AS schemas`;

interface HeldRow {
  kind: ObjectKind | 'membership';
  schema: string;
  name: string;
  privilege: string | null;
}

// One round trip: direct memberships, then privileges on this database, on the asked schemas, and
// on every table-like relation and sequence in them. Relations without a privilege for the role
// still come back (LEFT JOIN, privilege NULL): "every table in the schema" expands against them.
// The relkinds are those GRANT ... ON ALL TABLES IN SCHEMA reaches. A NULL ACL means the default
// one (acldefault), which gives the role nothing unless it owns the object.
const HELD = `
  SELECT 'membership' AS kind, '' AS schema, g.rolname::text AS name, NULL::text AS privilege
    FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
   WHERE m.member = $1::oid
  UNION ALL
  SELECT 'database', '', d.datname::text, a.privilege_type
    FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
   WHERE d.datname = current_database() AND a.grantee = $1::oid
  UNION ALL
  SELECT 'schema', n.nspname::text, '', a.privilege_type
    FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
   WHERE n.nspname = ANY($2::text[]) AND a.grantee = $1::oid
  UNION ALL
  SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname::text, c.relname::text,
         a.privilege_type
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN LATERAL aclexplode(
      coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))
    ) a ON a.grantee = $1::oid
   WHERE n.nspname = ANY($2::text[]) AND c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S')`;

/**
 * The snapshot planGrants needs for `query`. `db` must be connected to `query.database`: schema
 * and relation catalogs are per database (checked, since a wrong pool would make every grant look
 * missing).
 */
export async function currentPrivileges(db: Queryable, query: CatalogQuery): Promise<PrivilegeSnapshot> {
  const basics = (await db.query<BasicsRow>(BASICS, [query.role, query.groups, query.schemas])).rows[0]!;
  if (basics.database !== query.database) {
    throw new Error(
      `currentPrivileges for database "${query.database}" was given a connection to "${basics.database}"`,
    );
  }
  const snapshot: PrivilegeSnapshot = {
    role: query.role,
    database: query.database,
    schemas: [...query.schemas],
    groups: [...query.groups],
    serverVersionNum: basics.version,
    roleExists: basics.role_oid !== null,
    databaseExists: true,
    existingSchemas: basics.schemas,
    existingGroups: basics.groups,
    memberOf: [],
    relations: [],
    held: [],
  };
  if (basics.role_oid === null) return snapshot;

  const rows = (await db.query<HeldRow>(HELD, [basics.role_oid, query.schemas])).rows;
  const relations = new Map<string, { schema: string; name: string; kind: RelationKind }>();
  const seen = new Set<string>();
  for (const row of rows) {
    if (row.kind === 'membership') {
      if (!snapshot.memberOf.includes(row.name)) snapshot.memberOf.push(row.name);
      continue;
    }
    if (row.kind === 'table' || row.kind === 'sequence') {
      relations.set(JSON.stringify([row.schema, row.name]), {
        schema: row.schema,
        name: row.name,
        kind: row.kind,
      });
    }
    if (row.privilege === null || !isKnownPrivilege(row.kind, row.privilege)) continue;
    const entry: PrivilegeEntry = {
      role: query.role,
      database: query.database,
      kind: row.kind,
      schema: row.schema,
      name: row.name,
      privilege: row.privilege,
    };
    // Grants of one privilege by several grantors are several ACL items but one held privilege.
    if (seen.has(entryKey(entry))) continue;
    seen.add(entryKey(entry));
    snapshot.held.push(entry);
  }
  snapshot.relations = [...relations.values()];
  return snapshot;
}

/** Privileges outside the closed lists (a newer server's) are not ours to diff: ignore them. */
function isKnownPrivilege(kind: ObjectKind, privilege: string): privilege is ConcretePrivilege {
  return (
    privilege !== 'ALL' && (PRIVILEGES_BY_TARGET[KIND_TARGET[kind]] as readonly string[]).includes(privilege)
  );
}
