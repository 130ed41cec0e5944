// A snapshot of everything in PostgreSQL's catalogs that an injected statement could change:
// roles and their attributes, role memberships, databases, schemas, relations (tables, views,
// sequences), and every privilege on them (datacl, nspacl, relacl, attacl, pg_default_acl),
// as a set of flat strings, so two snapshots diff to exactly what changed. An ACL that is NULL
// means the built-in default; it is expanded with acldefault(), so the first GRANT on an object
// (which writes the default out explicitly) shows only the privileges it really added.
import type { HarnessInfo } from '../../harness/harness.ts';
import { superuserQuery } from '../../harness/scenario.ts';

const CLUSTER_SQL = `
SELECT 'role|' || rolname || '|super=' || rolsuper || ',inherit=' || rolinherit || ',createrole=' || rolcreaterole
       || ',createdb=' || rolcreatedb || ',login=' || rolcanlogin || ',replication=' || rolreplication
       || ',bypassrls=' || rolbypassrls || ',connlimit=' || rolconnlimit AS k
  FROM pg_roles
UNION ALL
SELECT 'member|' || r.rolname || '|' || m.rolname || '|admin=' || a.admin_option
  FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
UNION ALL
SELECT 'database|' || datname || '|owner=' || pg_get_userbyid(datdba) FROM pg_database
UNION ALL
SELECT 'grant|database|' || d.datname || '|' || coalesce(g.rolname, 'PUBLIC') || '|' || x.privilege_type
       || '|grantable=' || x.is_grantable
  FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d'::"char", d.datdba))) x
  LEFT JOIN pg_roles g ON g.oid = x.grantee`;

const DATABASE_SQL = `
WITH ns AS (
  SELECT * FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
)
SELECT 'schema|' || nspname || '|owner=' || pg_get_userbyid(nspowner) AS k FROM ns
UNION ALL
SELECT 'grant|schema|' || n.nspname || '|' || coalesce(g.rolname, 'PUBLIC') || '|' || x.privilege_type
       || '|grantable=' || x.is_grantable
  FROM ns n, aclexplode(coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))) x
  LEFT JOIN pg_roles g ON g.oid = x.grantee
UNION ALL
SELECT 'relation|' || n.nspname || '.' || c.relname || '|kind=' || c.relkind::text || ',owner=' || pg_get_userbyid(c.relowner)
  FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
UNION ALL
SELECT 'grant|relation|' || n.nspname || '.' || c.relname || '|' || coalesce(g.rolname, 'PUBLIC') || '|'
       || x.privilege_type || '|grantable=' || x.is_grantable
  FROM pg_class c JOIN ns n ON n.oid = c.relnamespace,
       aclexplode(coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) x
  LEFT JOIN pg_roles g ON g.oid = x.grantee
UNION ALL
SELECT 'grant|column|' || n.nspname || '.' || c.relname || '.' || a.attname || '|' || coalesce(g.rolname, 'PUBLIC')
       || '|' || x.privilege_type
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns n ON n.oid = c.relnamespace,
       aclexplode(a.attacl) x
  LEFT JOIN pg_roles g ON g.oid = x.grantee
 WHERE a.attacl IS NOT NULL
UNION ALL
SELECT 'default-acl|' || pg_get_userbyid(d.defaclrole) || '|' || coalesce(n.nspname, '*') || '|' || d.defaclobjtype::text
       || '|' || coalesce(g.rolname, 'PUBLIC') || '|' || x.privilege_type
  FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace,
       aclexplode(d.defaclacl) x
  LEFT JOIN pg_roles g ON g.oid = x.grantee`;

/** The catalog of the cluster plus the per-database catalogs of `databases`, as flat strings. */
export async function catalogSnapshot(info: HarnessInfo, databases: readonly string[]): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const row of await superuserQuery<{ k: string }>(info, CLUSTER_SQL)) keys.add(row.k);
  for (const database of databases) {
    for (const row of await superuserQuery<{ k: string }>(info, DATABASE_SQL, [], database)) {
      keys.add(`${database}:${row.k}`);
    }
  }
  return keys;
}

export interface CatalogDiff {
  added: string[];
  removed: string[];
}

export function diffCatalog(before: ReadonlySet<string>, after: ReadonlySet<string>): CatalogDiff {
  return {
    added: [...after].filter((k) => !before.has(k)).sort(),
    removed: [...before].filter((k) => !after.has(k)).sort(),
  };
}
