// What SQL brings a role's memberships and object privileges from what the server holds to what
// the access resource asks for. Pure: the caller reads the catalogs (currentPrivileges), calls
// planGrants, runs the statements (applyPlan) and records `applied`.
//
// The diff, in normalised entries (privilege-set.ts):
//   grant  = desired − held
//   revoke = (applied − desired − kept) ∩ held
// so a reconcile with no change plans nothing (no DDL in the steady state), and only what an
// earlier generation of this resource applied is ever revoked: privileges someone else granted to
// the role are left alone, and so is what other access resources sharing the role (`kept`) ask for.
import {
  GRANT_TARGETS,
  type Grant,
  isPrivilegeFor,
  PRIVILEGES_BY_TARGET,
  type SequencesGrant,
} from '../api/types.ts';
import {
  assertIdentifier,
  assertManageableRole,
  InvalidPrivilegeError,
  privilegeList,
  quoteIdentifier,
  quoteQualified,
} from './identifiers.ts';
import {
  type AccessTarget,
  type CatalogQuery,
  type Expansion,
  entryKey,
  expand,
  KIND_TARGET,
  type Membership,
  type MissingObject,
  membershipKey,
  type ObjectKind,
  type PrivilegeEntry,
  type PrivilegeSnapshot,
  relationNames,
  wholeSchemaKey,
} from './privilege-set.ts';

/** What one access resource asks for in one database; also the shape of the `applied` record. */
export interface AccessRecord {
  role: string;
  database: string;
  memberOf: string[];
  grants: Grant[];
}

/**
 * A sequences grant as status.applied may record it: `sequences` lists the sequences in force when
 * some of the schema's could not be granted (record-in-force.ts), as `tables` does for tables.
 * spec.grants never has it (the schema has no such field).
 */
export interface RecordedSequencesGrant extends SequencesGrant {
  sequences?: string[];
}

export interface PlannedStatement {
  action: 'grant' | 'revoke';
  /** The database whose connection runs the statement. */
  database: string;
  /**
   * `cluster`: a role membership or a database privilege. Both live in shared catalogs, so the
   * statement has the same effect from any database; it runs in the target database, inside that
   * database's transaction. `database`: a schema, table or sequence privilege, valid only when
   * connected to `database`.
   */
  scope: 'cluster' | 'database';
  sql: string;
  /**
   * What the statement grants or revokes: privilege entries, or one membership. A statement the
   * server refuses is split by them (splitStatement) and reported by them.
   */
  entries?: PrivilegeEntry[];
  membership?: Membership;
}

export interface GrantPlan {
  /** Revokes first (deepest objects first, memberships last), then grants (memberships first). */
  statements: PlannedStatement[];
  /** The record to store once the statements have run: `desired`, normalised. */
  applied: AccessRecord;
  /** Objects the desired grants name that do not exist; their grants are not in `statements`. */
  missing: MissingObject[];
}

export interface PlanInput {
  desired: AccessRecord;
  /** What an earlier generation applied and recorded; undefined when nothing was. */
  applied?: AccessRecord | undefined;
  /**
   * What other access resources sharing the role ask for (one role per principal, so every
   * resource of one identity on one server has the same role): never revoked here, or changing
   * one resource would take away what another still needs, until that one's next resync.
   */
  keep?: readonly AccessRecord[] | undefined;
  /** currentPrivileges() for every query catalogQueries(desired, applied, keep) returned. */
  snapshots: readonly PrivilegeSnapshot[];
}

/** Most objects per GRANT/REVOKE statement, to keep statements a sane size for big schemas. */
const MAX_OBJECTS_PER_STATEMENT = 100;

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function uniqueSorted(values: readonly string[]): string[] {
  return [...new Set(values)].sort(byText);
}

/**
 * Checks every identifier and privilege (input may not have passed the CRD schema) and returns a
 * canonical copy: sorted, duplicates removed, ALL kept as written so the record does not depend on
 * the server version. Throws InvalidIdentifierError or InvalidPrivilegeError.
 */
export function normaliseRecord(record: AccessRecord): AccessRecord {
  assertIdentifier(record.role);
  assertIdentifier(record.database);
  const memberOf = uniqueSorted(record.memberOf ?? []);
  for (const group of memberOf) assertIdentifier(group);
  const grants = new Map<string, Grant>();
  for (const grant of record.grants ?? []) {
    const normal = normaliseGrant(grant);
    grants.set(JSON.stringify(normal), normal);
  }
  const sorted = [...grants.entries()].sort(([a], [b]) => byText(a, b)).map(([, grant]) => grant);
  return { role: record.role, database: record.database, memberOf, grants: sorted };
}

function normaliseGrant(grant: Grant): Grant {
  const target = grant.target as string | undefined;
  if (target === undefined || !(GRANT_TARGETS as readonly string[]).includes(target))
    throw new InvalidPrivilegeError(target, undefined);
  const privilegeSet = new Set<string>(grant.privileges ?? []);
  if (privilegeSet.size === 0) throw new InvalidPrivilegeError(target, undefined);
  for (const privilege of privilegeSet) {
    if (!isPrivilegeFor(grant.target, privilege)) throw new InvalidPrivilegeError(target, privilege);
  }
  // Closed-list order, so equal sets serialise equally.
  const privileges = (PRIVILEGES_BY_TARGET[grant.target] as readonly string[]).filter((p) =>
    privilegeSet.has(p),
  );
  if (grant.target === 'database') return { target: 'database', privileges } as Grant;
  assertIdentifier(grant.schema);
  if (grant.target === 'tables' && grant.tables !== undefined) {
    const tables = uniqueSorted(grant.tables);
    if (tables.length === 0)
      throw new InvalidPrivilegeError('tables', undefined, 'an empty table list (omit `tables` for all)');
    for (const table of tables) assertIdentifier(table);
    return { target: 'tables', schema: grant.schema, tables, privileges } as Grant;
  }
  const listed = (grant as RecordedSequencesGrant).sequences;
  if (grant.target === 'sequences' && listed !== undefined) {
    const sequences = uniqueSorted(listed);
    if (sequences.length === 0)
      throw new InvalidPrivilegeError('sequences', undefined, 'an empty sequence list');
    for (const sequence of sequences) assertIdentifier(sequence);
    return { target: 'sequences', schema: grant.schema, sequences, privileges } as Grant;
  }
  return { target: grant.target, schema: grant.schema, privileges } as Grant;
}

/** Schemas the grants of some records name. */
function schemasOf(...records: Array<AccessRecord | undefined>): string[] {
  return uniqueSorted(
    records.flatMap((record) =>
      (record?.grants ?? []).flatMap((grant) => (grant.target === 'database' ? [] : [grant.schema])),
    ),
  );
}

/**
 * What to read before planning: the desired (role, database), and the applied one when the role
 * or database changed since (its privileges are revoked there). Memberships are cluster-wide, so
 * only the desired groups need an existence check.
 */
export function catalogQueries(
  desired: AccessRecord,
  applied?: AccessRecord,
  keep: readonly AccessRecord[] = [],
): CatalogQuery[] {
  const same = !applied || (applied.role === desired.role && applied.database === desired.database);
  // The kept records' schemas are read where they share role and database with a query, so their
  // entries can be told apart from what this plan would revoke there.
  const keptIn = (role: string, database: string) =>
    keep.filter((record) => record.role === role && record.database === database);
  const first: CatalogQuery = {
    role: desired.role,
    database: desired.database,
    schemas: schemasOf(desired, same ? applied : undefined, ...keptIn(desired.role, desired.database)),
    groups: uniqueSorted(desired.memberOf),
  };
  if (same || !applied) return [first];
  return [
    first,
    {
      role: applied.role,
      database: applied.database,
      schemas: schemasOf(applied, ...keptIn(applied.role, applied.database)),
      groups: [],
    },
  ];
}

/** Entries and memberships the kept records ask for, for the snapshots at hand. */
function keptEntries(
  keep: readonly AccessRecord[],
  snapshots: readonly PrivilegeSnapshot[],
): { entries: Set<string>; memberships: Set<string> } {
  const entries = new Set<string>();
  const memberships = new Set<string>();
  for (const record of keep) {
    let normal: AccessRecord;
    try {
      normal = normaliseRecord(record);
    } catch {
      continue; // another resource's invalid spec: nothing of it was ever granted
    }
    for (const group of normal.memberOf) memberships.add(membershipKey({ role: normal.role, group }));
    const snapshot = snapshots.find((s) => s.role === normal.role && s.database === normal.database);
    // No snapshot: not a database this plan revokes in.
    if (!snapshot) continue;
    let expanded: Expansion;
    try {
      expanded = expand({ ...normal, memberOf: [] }, snapshot);
    } catch {
      continue; // a schema the catalog was not asked about: nothing to keep there
    }
    for (const entry of expanded.entries) entries.add(entryKey(entry));
  }
  return { entries, memberships };
}

function snapshotFor(
  snapshots: readonly PrivilegeSnapshot[],
  role: string,
  database: string,
): PrivilegeSnapshot {
  const found = snapshots.find((s) => s.role === role && s.database === database);
  if (!found) throw new Error(`no catalog snapshot of role "${role}" in database "${database}"`);
  return found;
}

export function planGrants(input: PlanInput): GrantPlan {
  assertManageableRole(input.desired.role);
  const desired = normaliseRecord(input.desired);
  const applied = input.applied ? normaliseRecord(input.applied) : undefined;
  const desiredSnapshot = snapshotFor(input.snapshots, desired.role, desired.database);
  const appliedSnapshot = applied ? snapshotFor(input.snapshots, applied.role, applied.database) : undefined;
  const used =
    appliedSnapshot && appliedSnapshot !== desiredSnapshot
      ? [desiredSnapshot, appliedSnapshot]
      : [desiredSnapshot];

  const want = expand(desired, desiredSnapshot);
  // Memberships of the applied record need no expansion: they are checked against what is held.
  const had: Expansion =
    applied && appliedSnapshot
      ? expand({ ...applied, memberOf: [] }, appliedSnapshot)
      : { entries: [], memberships: [], wholeSchemas: new Set(), missing: [] };
  const hadMemberships: Membership[] = (applied?.memberOf ?? []).map((group) => ({
    role: applied!.role,
    group,
  }));

  const held = new Set(used.flatMap((s) => s.held.map(entryKey)));
  const heldMemberships = new Set(
    used.flatMap((s) =>
      s.roleExists ? s.memberOf.map((group) => membershipKey({ role: s.role, group })) : [],
    ),
  );
  const wanted = new Set(want.entries.map(entryKey));
  const wantedMemberships = new Set(want.memberships.map(membershipKey));

  const kept = keptEntries(input.keep ?? [], used);

  const grants = want.entries.filter((e) => !held.has(entryKey(e)));
  const revokes = had.entries.filter(
    (e) => !wanted.has(entryKey(e)) && !kept.entries.has(entryKey(e)) && held.has(entryKey(e)),
  );
  const joins = want.memberships.filter((m) => !heldMemberships.has(membershipKey(m)));
  const leaves = uniqueMemberships(hadMemberships).filter(
    (m) =>
      !wantedMemberships.has(membershipKey(m)) &&
      !kept.memberships.has(membershipKey(m)) &&
      heldMemberships.has(membershipKey(m)),
  );

  const cluster = desired.database;
  const statements = [
    ...renderPrivileges('revoke', revokes, had.wholeSchemas, used, cluster),
    ...leaves.map((m) => membershipStatement('revoke', m, cluster)),
    ...joins.map((m) => membershipStatement('grant', m, cluster)),
    ...renderPrivileges('grant', grants, want.wholeSchemas, used, cluster),
  ];
  return { statements, applied: desired, missing: want.missing };
}

function uniqueMemberships(memberships: Membership[]): Membership[] {
  return [...new Map(memberships.map((m) => [membershipKey(m), m])).values()];
}

function membershipStatement(action: 'grant' | 'revoke', m: Membership, database: string): PlannedStatement {
  const sql =
    action === 'grant'
      ? `GRANT ${quoteIdentifier(m.group)} TO ${quoteIdentifier(m.role)}`
      : `REVOKE ${quoteIdentifier(m.group)} FROM ${quoteIdentifier(m.role)}`;
  return { action, database, scope: 'cluster', sql, membership: { ...m } };
}

/** Grants deepen from database to relations; revokes go the other way round. */
const GRANT_ORDER: ObjectKind[] = ['database', 'schema', 'table', 'sequence'];
const REVOKE_ORDER: ObjectKind[] = ['sequence', 'table', 'schema', 'database'];

interface StatementGroup {
  role: string;
  database: string;
  kind: ObjectKind;
  schema: string;
  privileges: string[];
  names: string[];
  entries: PrivilegeEntry[];
}

/**
 * Entries → statements: privileges on one object go in one statement, and objects with the same
 * privileges share one. `ALL TABLES|SEQUENCES IN SCHEMA` is used only where the grant asked for
 * the whole schema and the group covers every such relation the catalog lists, so a statement never
 * reaches an object the diff did not choose.
 */
function renderPrivileges(
  action: 'grant' | 'revoke',
  entries: PrivilegeEntry[],
  wholeSchemas: Set<string>,
  snapshots: PrivilegeSnapshot[],
  clusterDatabase: string,
): PlannedStatement[] {
  const perObject = new Map<
    string,
    { entry: PrivilegeEntry; privileges: Set<string>; entries: PrivilegeEntry[] }
  >();
  for (const entry of entries) {
    const key = JSON.stringify([entry.role, entry.database, entry.kind, entry.schema, entry.name]);
    const item = perObject.get(key) ?? { entry, privileges: new Set<string>(), entries: [] };
    if (!item.privileges.has(entry.privilege)) item.entries.push(entry);
    item.privileges.add(entry.privilege);
    perObject.set(key, item);
  }
  const groups = new Map<string, StatementGroup>();
  for (const { entry, privileges, entries: objectEntries } of perObject.values()) {
    const ordered = (PRIVILEGES_BY_TARGET[KIND_TARGET[entry.kind]] as readonly string[]).filter((p) =>
      privileges.has(p),
    );
    const relation = entry.kind === 'table' || entry.kind === 'sequence';
    // Databases and schemas are one object each; relations group by schema and privilege set.
    const key = JSON.stringify([
      entry.role,
      entry.database,
      entry.kind,
      entry.schema,
      relation ? '' : entry.name,
      ordered,
    ]);
    const group = groups.get(key) ?? {
      role: entry.role,
      database: entry.database,
      kind: entry.kind,
      schema: entry.schema,
      privileges: ordered,
      names: [],
      entries: [],
    };
    group.names.push(entry.name);
    group.entries.push(...objectEntries);
    groups.set(key, group);
  }
  const order = action === 'grant' ? GRANT_ORDER : REVOKE_ORDER;
  const sorted = [...groups.values()].sort(
    (a, b) =>
      order.indexOf(a.kind) - order.indexOf(b.kind) ||
      byText(a.role, b.role) ||
      byText(a.database, b.database) ||
      byText(a.schema, b.schema) ||
      byText(a.privileges.join(), b.privileges.join()) ||
      byText(a.names[0] ?? '', b.names[0] ?? ''),
  );
  return sorted.flatMap((group) => renderGroup(action, group, wholeSchemas, snapshots, clusterDatabase));
}

function privilegeSql(
  action: 'grant' | 'revoke',
  kind: ObjectKind,
  privileges: readonly string[],
  objects: string,
  role: string,
): string {
  const list = privilegeList(KIND_TARGET[kind], privileges);
  const grantee = quoteIdentifier(role);
  return action === 'grant'
    ? `GRANT ${list} ON ${objects} TO ${grantee}`
    : `REVOKE ${list} ON ${objects} FROM ${grantee}`;
}

/** One object as SQL: `DATABASE "d"`, `SCHEMA "s"`, `TABLE "s"."t"`, `SEQUENCE "s"."q"`. */
function objectSql(entry: Pick<PrivilegeEntry, 'kind' | 'schema' | 'name'>): string {
  switch (entry.kind) {
    case 'database':
      return `DATABASE ${quoteIdentifier(entry.name)}`;
    case 'schema':
      return `SCHEMA ${quoteIdentifier(entry.schema)}`;
    case 'table':
      return `TABLE ${quoteQualified(entry.schema, entry.name)}`;
    case 'sequence':
      return `SEQUENCE ${quoteQualified(entry.schema, entry.name)}`;
  }
}

function renderGroup(
  action: 'grant' | 'revoke',
  group: StatementGroup,
  wholeSchemas: Set<string>,
  snapshots: PrivilegeSnapshot[],
  clusterDatabase: string,
): PlannedStatement[] {
  const sql = (objects: string): string =>
    privilegeSql(action, group.kind, group.privileges, objects, group.role);
  if (group.kind === 'database') {
    return [
      {
        action,
        database: clusterDatabase,
        scope: 'cluster',
        sql: sql(`DATABASE ${quoteIdentifier(group.names[0]!)}`),
        entries: group.entries,
      },
    ];
  }
  const here = (text: string, entries: PrivilegeEntry[]): PlannedStatement => ({
    action,
    database: group.database,
    scope: 'database',
    sql: text,
    entries,
  });
  if (group.kind === 'schema') return [here(sql(`SCHEMA ${quoteIdentifier(group.schema)}`), group.entries)];

  const kind = group.kind;
  const names = uniqueSorted(group.names);
  const key = wholeSchemaKey(group.role, group.database, kind, group.schema);
  const all = wholeSchemas.has(key)
    ? relationNames(snapshotFor(snapshots, group.role, group.database), group.schema, kind)
    : [];
  const whole =
    wholeSchemas.has(key) && names.length === all.length && all.every((name) => names.includes(name));
  const plural = kind === 'table' ? 'TABLES' : 'SEQUENCES';
  if (whole) return [here(sql(`ALL ${plural} IN SCHEMA ${quoteIdentifier(group.schema)}`), group.entries)];
  const statements: PlannedStatement[] = [];
  for (let i = 0; i < names.length; i += MAX_OBJECTS_PER_STATEMENT) {
    const chunk = names.slice(i, i + MAX_OBJECTS_PER_STATEMENT);
    const objects = chunk.map((name) => quoteQualified(group.schema, name));
    statements.push(
      here(
        sql(`${kind === 'table' ? 'TABLE' : 'SEQUENCE'} ${objects.join(', ')}`),
        group.entries.filter((entry) => chunk.includes(entry.name)),
      ),
    );
  }
  return statements;
}

/**
 * A statement the server refused, in smaller pieces that can succeed or fail on their own: one
 * statement per object when it names several (an `ALL TABLES IN SCHEMA` included), else one per
 * privilege when it names several; else nothing (it cannot be split). Each piece carries its own
 * entries, runs where the statement ran, and is idempotent like it.
 */
export function splitStatement(statement: PlannedStatement): PlannedStatement[] {
  const entries = statement.entries ?? [];
  if (entries.length < 2) return [];
  const byObject = new Map<string, PrivilegeEntry[]>();
  for (const entry of entries) {
    const key = JSON.stringify([entry.role, entry.kind, entry.schema, entry.name]);
    byObject.set(key, [...(byObject.get(key) ?? []), entry]);
  }
  const parts = byObject.size > 1 ? [...byObject.values()] : entries.map((entry) => [entry]);
  return parts.map((part) => {
    const first = part[0]!;
    const privileges = (PRIVILEGES_BY_TARGET[KIND_TARGET[first.kind]] as readonly string[]).filter((p) =>
      part.some((entry) => entry.privilege === p),
    );
    return {
      action: statement.action,
      database: statement.database,
      scope: statement.scope,
      sql: privilegeSql(statement.action, first.kind, privileges, objectSql(first), first.role),
      entries: part,
    };
  });
}

export type { AccessTarget, CatalogQuery, MissingObject, PrivilegeEntry, PrivilegeSnapshot };
