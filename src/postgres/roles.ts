// The PostgreSQL side effects of the operator, run as the server's Entra admin: read what the
// server is, make sure an Entra principal exists for a managed identity, run a grant plan, and
// drop a role without ever dropping data. Every value goes in as a query parameter, and every
// name that must be SQL text goes through quoteIdentifier (identifiers.ts).
import type pg from 'pg';
import { currentPrivileges, type Queryable } from './catalog.ts';
import {
  type AccessRecord,
  catalogQueries,
  type PlannedStatement,
  planGrants,
  splitStatement,
} from './grant-plan.ts';
import {
  type AdminFacts,
  GrantNotPermittedError,
  type GrantRefusal,
  isRefusalCode,
  PERMISSION_DENIED,
  refusalOf,
} from './grant-refusals.ts';
import { assertManageableRole, quoteIdentifier } from './identifiers.ts';
import { absentSnapshot, type PrivilegeSnapshot } from './privilege-set.ts';
import { type ReassignResult, reassignOwned } from './reassign-owned.ts';

export { currentPrivileges, type Queryable } from './catalog.ts';

/** The pool for a database of the server being worked on (pools.ts keeps one per database). */
export type PoolFor = (database: string) => pg.Pool;

/** Principals are created, and roles dropped, from here: pgaadauth lives in this database. */
export const ADMIN_DATABASE = 'postgres';

function sqlState(error: unknown): string | undefined {
  return (error as { code?: unknown })?.code as string | undefined;
}

// --- serverInfo ---

export interface ServerInfo {
  /** server_version, e.g. "17.5". */
  version: string;
  /** server_version_num, e.g. 170005. */
  versionNum: number;
  currentUser: string;
  /** pgaadauth_list_principals(boolean) exists: Microsoft Entra authentication is enabled. */
  pgaadauth: boolean;
  /** current_user is an Entra admin per pgaadauth_list_principals(true); undefined without pgaadauth. */
  entraAdmin: boolean | undefined;
}

/** For the EntraDatabaseServer Ready check: connected, pgaadauth present, and we are its admin. */
export async function serverInfo(db: Queryable): Promise<ServerInfo> {
  const { rows } = await db.query<{
    version: string;
    version_num: number;
    current_user: string;
    pgaadauth: boolean;
  }>(
    `SELECT current_setting('server_version') AS version,
            current_setting('server_version_num')::int AS version_num,
            current_user::text AS current_user,
            to_regprocedure('pgaadauth_list_principals(boolean)') IS NOT NULL AS pgaadauth`,
  );
  const row = rows[0]!;
  let entraAdmin: boolean | undefined;
  if (row.pgaadauth) {
    const admins = await db.query<{ admin: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM pgaadauth_list_principals(true) p WHERE p.rolname = current_user) AS admin',
    );
    entraAdmin = admins.rows[0]!.admin;
  }
  return {
    version: row.version,
    versionNum: row.version_num,
    currentUser: row.current_user,
    pgaadauth: row.pgaadauth,
    entraAdmin,
  };
}

// --- ensurePrincipal ---

/** The wanted role name is taken by a role that is not this identity's: never take it over. */
export class RoleConflictError extends Error {
  override readonly name: string = 'RoleConflictError';
  readonly reason = 'RoleConflict';
  readonly role: string;
  /** The Entra object the existing role maps to; undefined for a role that is not an Entra principal. */
  readonly existingObjectId: string | undefined;

  constructor(role: string, principalId: string, existingObjectId: string | undefined) {
    super(
      existingObjectId === undefined
        ? `role "${role}" already exists and is not a Microsoft Entra principal; choose another roleName ` +
            `(the operator never takes over a role it did not create for identity ${principalId})`
        : `role "${role}" already exists for another Microsoft Entra object (${existingObjectId}); choose ` +
            `another roleName for identity ${principalId}`,
    );
    this.role = role;
    this.existingObjectId = existingObjectId;
  }
}

/**
 * The identity is an Entra admin of the server (the operator's own identity, or another admin):
 * an app must never log in as an admin role, whatever allow-list let the resource this far.
 */
export class AdminPrincipalError extends RoleConflictError {
  override readonly name = 'AdminPrincipalError';

  constructor(role: string, principalId: string) {
    super(role, principalId, principalId);
    this.message =
      `identity ${principalId} is a Microsoft Entra admin of this server (role "${role}"); entra-access ` +
      'never lets an app log in as an admin: use an app identity in spec.identity';
  }
}

/**
 * pgaadauth_create_principal_with_oid could not validate the object ID against Microsoft Entra ID
 * (Microsoft Graph): Azure answers XX000 "Could not validate AAD user <oid> because its name is not
 * found in the tenant", or names an incorrect object type, or fails to reach Graph at all. It
 * happens for a while after an identity is created (replication), when the server cannot reach
 * Entra, or for an object of another tenant. Nothing was created; retrying later may succeed.
 */
export class PrincipalNotValidatedError extends Error {
  override readonly name = 'PrincipalNotValidatedError';
  readonly reason = 'PrincipalNotValidated';
  readonly principalId: string;
  /** What the server said. */
  readonly serverMessage: string;

  constructor(principalId: string, cause: unknown) {
    const serverMessage = (cause as Error)?.message ?? String(cause);
    super(
      `the server could not validate object ID ${principalId} with Microsoft Entra ID: ${serverMessage}`,
      { cause },
    );
    this.principalId = principalId;
    this.serverMessage = serverMessage;
  }
}

/**
 * Azure's pgaadauth fails with XX000 (internal_error) when it cannot validate the object; told
 * apart from other internal errors by what it says.
 */
export function isPrincipalValidationFailure(error: unknown): boolean {
  if (sqlState(error) !== 'XX000') return false;
  const message = (error as Error)?.message ?? '';
  return /could not validate|not found in the tenant|object type|validate (the )?user/i.test(message);
}

export interface EnsurePrincipalInput {
  /** The role name wanted for the identity. */
  role: string;
  /** The managed identity's principal (object) id. */
  principalId: string;
}

export interface EnsuredPrincipal {
  /** The role the identity logs in as: `role`, or the one it already had. */
  role: string;
  /** pgaadauth_create_principal_with_oid ran in this call. */
  created: boolean;
  /** The identity already had a role under another name, which is used instead of creating one. */
  adoptedExisting: boolean;
  /**
   * The role existed without LOGIN (kept by an earlier deletion because it owned objects) and got
   * LOGIN back: the identity is wanted again.
   */
  loginRestored: boolean;
}

// One round trip, the common case on every reconcile. Azure documents the result columns as
// rolname, principalType, objectId, ...; whether they come back camelCase or folded to lower case
// depends on how the function was declared, so the object id is picked by a case-insensitive key.
const FIND_PRINCIPAL = `
  WITH principals AS (
    SELECT p.rolname::text AS rolname,
           (SELECT e.value FROM jsonb_each_text(to_jsonb(p)) e WHERE lower(e.key) = 'objectid') AS object_id
      FROM pgaadauth_list_principals(false) p)
  SELECT current_database()::text AS database,
         mine.rolname AS mine, r.rolcanlogin AS mine_can_login,
         EXISTS (SELECT 1 FROM pgaadauth_list_principals(true) a WHERE a.rolname = mine.rolname) AS mine_is_admin,
         (SELECT coalesce(object_id, '') FROM principals WHERE rolname = $2) AS holder_object_id,
         EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS name_taken
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT rolname FROM principals WHERE lower(object_id) = lower($1)
                        ORDER BY rolname LIMIT 1) mine ON true
    LEFT JOIN pg_roles r ON r.rolname = mine.rolname`;

interface FindRow {
  database: string;
  mine: string | null;
  mine_can_login: boolean | null;
  mine_is_admin: boolean;
  holder_object_id: string | null;
  name_taken: boolean;
}

/**
 * Makes sure the identity has an Entra principal role, creating it only when the identity has none.
 * Must run in database `postgres` as an Entra admin. Throws RoleConflictError (AdminPrincipalError
 * when the identity is an Entra admin of the server), ReservedRoleError, PrincipalNotValidatedError.
 */
export async function ensurePrincipal(db: Queryable, input: EnsurePrincipalInput): Promise<EnsuredPrincipal> {
  assertManageableRole(input.role);
  if (input.principalId.trim() === '') throw new Error('ensurePrincipal needs a principalId');
  for (let attempt = 0; ; attempt++) {
    const row = (await db.query<FindRow>(FIND_PRINCIPAL, [input.principalId, input.role])).rows[0]!;
    if (row.database !== ADMIN_DATABASE) {
      throw new Error(
        `Entra principals are managed from database "${ADMIN_DATABASE}", not "${row.database}"`,
      );
    }
    if (row.mine !== null) {
      if (row.mine_is_admin) throw new AdminPrincipalError(row.mine, input.principalId);
      const loginRestored = row.mine_can_login === false;
      if (loginRestored) await db.query(`ALTER ROLE ${quoteIdentifier(row.mine)} LOGIN`);
      return { role: row.mine, created: false, adoptedExisting: row.mine !== input.role, loginRestored };
    }
    if (row.name_taken) {
      throw new RoleConflictError(input.role, input.principalId, row.holder_object_id ?? undefined);
    }
    try {
      // Parameters, never SQL text: pgaadauth quotes the name itself.
      await db.query("SELECT pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)", [
        input.role,
        input.principalId,
      ]);
      return { role: input.role, created: true, adoptedExisting: false, loginRestored: false };
    } catch (error) {
      if (isPrincipalValidationFailure(error)) throw new PrincipalNotValidatedError(input.principalId, error);
      // Created concurrently (another replica, a retried reconcile): look again, once.
      if (sqlState(error) !== '42710' || attempt > 0) throw error;
    }
  }
}

// --- applyPlan ---

export interface ApplyOptions {
  /**
   * Statements the server refuses (grant-refusals.ts: 42501, or success with warning 01007/01006)
   * are left out, split down to the objects and privileges really refused, and reported in
   * `refused`; everything else is committed. Without it a refusal rolls the database's
   * transaction back and throws a GrantNotPermittedError (all or nothing: deletion, release).
   */
  keepGoing?: boolean;
}

export interface ApplyResult {
  /** Statements that took effect (after a refusal, the pieces of split statements that did). */
  executed: number;
  /** Databases written to, in order. */
  databases: string[];
  /** WARNINGs the server sent, e.g. "no privileges were granted" when the admin lacks grant option. */
  warnings: string[];
  /** With `keepGoing`: what the server refused, one object (and privilege) each, with its owner. */
  refused: GrantRefusal[];
  /** With refusals: who the admin is on the server, for the advice (grantNotPermittedMessage). */
  admin?: AdminFacts;
}

export class ApplyError extends Error {
  override readonly name = 'ApplyError';
  readonly database: string;
  readonly statement: string;
  readonly code: string | undefined;

  constructor(database: string, statement: string, cause: unknown) {
    super(
      `in database "${database}": ${(cause as Error)?.message ?? String(cause)} (while running: ${statement})`,
      {
        cause,
      },
    );
    this.database = database;
    this.statement = statement;
    this.code = sqlState(cause);
  }
}

/**
 * Runs the statements, one transaction per database in order of first appearance: a failure leaves
 * that database as it was (the caller then keeps its old `applied` record). Statements of separate
 * databases are not atomic together; the planner puts revokes first, so a partial run never
 * grants more than asked. A GRANT or REVOKE the server refuses (an error, or a warning that it did
 * less than asked) never counts as done: see ApplyOptions.keepGoing.
 */
export async function applyPlan(
  poolFor: PoolFor,
  statements: readonly PlannedStatement[],
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  const result: ApplyResult = { executed: 0, databases: [], warnings: [], refused: [] };
  const byDatabase = new Map<string, PlannedStatement[]>();
  for (const statement of statements) {
    byDatabase.set(statement.database, [...(byDatabase.get(statement.database) ?? []), statement]);
  }
  for (const [database, batch] of byDatabase) {
    await inTransaction(poolFor(database), database, batch, result, options.keepGoing === true);
    result.databases.push(database);
  }
  return result;
}

/**
 * The advisory lock (two-key form, scoped to the connected database) that serialises the
 * operator's grant transactions: "entr" as an int4, then 1, unlikely to meet an application's key.
 */
const GRANT_LOCK = [0x656e7472, 1] as const;

/** What node-postgres hands a 'notice' listener (pg-protocol's NoticeMessage), as far as used here. */
interface NoticeMessage {
  severity?: string | undefined;
  code?: string | undefined;
  message?: string | undefined;
}

/** A statement the server refused: its SQLSTATE and message. */
interface Refused {
  code: string;
  message: string;
}

const SAVEPOINT = 'entra_access_statement';

/**
 * Runs one statement; undefined when it did all it was asked, else how it was refused (an error
 * 42501, or a warning 01007/01006 among `notices`, which the caller empties first). Any other
 * error is thrown.
 */
async function runStatement(
  client: pg.PoolClient,
  sql: string,
  notices: NoticeMessage[],
): Promise<Refused | undefined> {
  notices.length = 0;
  try {
    await client.query(sql);
  } catch (error) {
    const code = sqlState(error);
    if (code === PERMISSION_DENIED) return { code, message: (error as Error).message };
    throw error;
  }
  const warning = notices.find((notice) => isRefusalCode(notice.code));
  return warning ? { code: warning.code ?? '', message: warning.message ?? '' } : undefined;
}

async function begin(client: pg.PoolClient): Promise<void> {
  await client.query('BEGIN');
  // GRANT/REVOKE update catalog rows; never wait long behind an application's lock.
  await client.query("SET LOCAL lock_timeout = '10s'");
  // Two GRANTs on one object (the database's datacl, a schema's nspacl) from concurrent
  // transactions fail with "tuple concurrently updated" rather than wait: reconciles of
  // resources sharing a database (every worker, every replica) take turns here instead.
  await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...GRANT_LOCK]);
}

// The owner of a refused object, for the message (and who the admin is).
const OWNER_OF = `
  SELECT CASE $1
           WHEN 'database' THEN (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $3)
           WHEN 'schema' THEN (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $2)
           WHEN 'role' THEN NULL
           ELSE (SELECT pg_get_userbyid(c.relowner) FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $2 AND c.relname = $3)
         END::text AS owner`;
const ADMIN_FACTS = `
  SELECT current_user::text AS role,
         (SELECT pg_has_role(current_user, r.oid, 'MEMBER') FROM pg_roles r
           WHERE r.rolname = 'azure_pg_admin') AS azure_pg_admin`;

/**
 * The statements of one database in one transaction. The common case costs nothing extra: all
 * statements in a row, then COMMIT. When the server refuses one, the transaction is rolled back
 * and run again statement by statement, each under a savepoint, a refused one split
 * (splitStatement) until what is refused is known object by object; then, with `keepGoing`, what
 * was not refused is committed, else nothing is and a GrantNotPermittedError says why.
 */
async function inTransaction(
  pool: pg.Pool,
  database: string,
  batch: PlannedStatement[],
  result: ApplyResult,
  keepGoing: boolean,
): Promise<void> {
  const client = await pool.connect();
  const notices: NoticeMessage[] = [];
  const onNotice = (notice: NoticeMessage): void => {
    notices.push(notice);
    if (notice.severity === 'WARNING') result.warnings.push(notice.message ?? '');
  };
  let broken = false;
  // A connection lost between statements is reported as an event; the next query fails anyway.
  const onError = (): void => {
    broken = true;
  };
  client.on('notice', onNotice);
  client.on('error', onError);
  let current = 'BEGIN';
  try {
    await begin(client);
    let refusedOnce = false;
    for (const statement of batch) {
      current = statement.sql;
      if (await runStatement(client, statement.sql, notices)) {
        refusedOnce = true;
        break;
      }
    }
    if (!refusedOnce) {
      current = 'COMMIT';
      await client.query('COMMIT');
      result.executed += batch.length;
      return;
    }

    current = 'ROLLBACK';
    await client.query('ROLLBACK');
    current = 'BEGIN';
    await begin(client);
    const refused: GrantRefusal[] = [];
    let executed = 0;
    const attempt = async (statement: PlannedStatement): Promise<void> => {
      current = statement.sql;
      await client.query(`SAVEPOINT ${SAVEPOINT}`);
      const refusal = await runStatement(client, statement.sql, notices);
      if (!refusal) {
        await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
        executed++;
        return;
      }
      await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      // Several objects: find which are refused. One object: 42501 refuses all its privileges
      // (the admin holds none), but a warning may be partial: find which privileges.
      const objects = new Set(
        (statement.entries ?? []).map((e) => JSON.stringify([e.kind, e.schema, e.name])),
      );
      const pieces = objects.size > 1 || refusal.code !== PERMISSION_DENIED ? splitStatement(statement) : [];
      if (pieces.length > 0) {
        for (const piece of pieces) await attempt(piece);
        return;
      }
      const object = refusalOf(statement, refusal.code, refusal.message).object;
      const owner = await client.query<{ owner: string | null }>(OWNER_OF, [
        object.kind,
        object.schema,
        object.name,
      ]);
      refused.push(refusalOf(statement, refusal.code, refusal.message, owner.rows[0]?.owner ?? undefined));
    };
    for (const statement of batch) await attempt(statement);
    const admin = (await client.query<{ role: string; azure_pg_admin: boolean | null }>(ADMIN_FACTS))
      .rows[0]!;
    const facts: AdminFacts = { role: admin.role, azurePgAdmin: admin.azure_pg_admin ?? undefined };
    if (!keepGoing) {
      current = 'ROLLBACK';
      await client.query('ROLLBACK');
      throw new GrantNotPermittedError(database, refused, facts);
    }
    current = 'COMMIT';
    await client.query('COMMIT');
    result.executed += executed;
    result.refused.push(...refused);
    result.admin = facts;
  } catch (error) {
    if (error instanceof GrantNotPermittedError) throw error;
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw new ApplyError(database, current, error);
  } finally {
    client.off('notice', onNotice);
    client.off('error', onError);
    client.release(broken);
  }
}

// --- dropRole ---

export interface OwnedObject {
  /** The database holding it; null for a cluster-wide object (a database, a tablespace). */
  database: string | null;
  description: string;
}

export interface DropRoleInput {
  role: string;
  /** What this resource applied: revoked before the drop (the role cannot be dropped while it has privileges). */
  applied?: AccessRecord | undefined;
  /**
   * spec.ownedObjects Reassign: what the role owns goes to this role (reassign-owned.ts) and the
   * role is dropped. Undefined (Keep): a role that owns objects is kept without login.
   */
  reassignTo?: string | undefined;
}

export type DropRoleResult =
  | { dropped: true; existed: boolean; revoked: number; reassigned?: ReassignResult }
  | { dropped: false; reason: 'RoleOwnsObjects'; objects: OwnedObject[]; revoked: number }
  | { dropped: false; reason: 'RoleHasDependencies'; detail: string; revoked: number };

/**
 * Revokes what was applied, then drops the role if it owns nothing in any database (pg_shdepend is
 * cluster-wide). A role that owns objects, or that something else still depends on, is kept with
 * its login revoked: dropping it would need its objects dropped or reassigned, and that is data.
 * With `reassignTo`, its objects are reassigned first (never dropped), then the role is dropped.
 */
export async function dropRole(poolFor: PoolFor, input: DropRoleInput): Promise<DropRoleResult> {
  assertManageableRole(input.role);
  if (input.applied && input.applied.role !== input.role) {
    throw new Error(`dropRole of "${input.role}" was given the applied record of "${input.applied.role}"`);
  }
  const admin = poolFor(ADMIN_DATABASE);
  const role = await admin.query<{ rolcanlogin: boolean }>(
    'SELECT rolcanlogin FROM pg_roles WHERE rolname = $1',
    [input.role],
  );
  if (!role.rowCount) return { dropped: true, existed: false, revoked: 0 };

  const revoked = input.applied ? await revokeApplied(poolFor, input.applied) : 0;
  const objects =
    input.reassignTo === undefined ? await ownedObjects(poolFor, input.role, input.applied?.database) : [];
  const keepWithoutLogin = async (): Promise<void> => {
    if (role.rows[0]!.rolcanlogin) await admin.query(`ALTER ROLE ${quoteIdentifier(input.role)} NOLOGIN`);
  };
  let reassigned: ReassignResult | undefined;
  if (input.reassignTo !== undefined) {
    // No new session while its objects change hands; reassignOwned ends the open ones.
    await keepWithoutLogin();
    reassigned = await reassignOwned(poolFor, {
      role: input.role,
      to: input.reassignTo,
      adminDatabase: ADMIN_DATABASE,
      lock: GRANT_LOCK,
    });
  } else if (objects.length > 0) {
    await keepWithoutLogin();
    return { dropped: false, reason: 'RoleOwnsObjects', objects, revoked };
  }
  try {
    await admin.query(`DROP ROLE ${quoteIdentifier(input.role)}`);
    return { dropped: true, existed: true, revoked, ...(reassigned ? { reassigned } : {}) };
  } catch (error) {
    // 2BP01: privileges someone else granted, or an object created since the check.
    if (sqlState(error) !== '2BP01') throw error;
    await keepWithoutLogin();
    const detail = (error as { detail?: string }).detail ?? (error as Error).message;
    return { dropped: false, reason: 'RoleHasDependencies', detail, revoked };
  }
}

async function revokeApplied(poolFor: PoolFor, applied: AccessRecord): Promise<number> {
  const nothing: AccessRecord = { role: applied.role, database: applied.database, memberOf: [], grants: [] };
  const snapshots: PrivilegeSnapshot[] = [];
  for (const query of catalogQueries(nothing, applied)) {
    try {
      snapshots.push(await currentPrivileges(poolFor(query.database), query));
    } catch (error) {
      // The database is gone, and with it every privilege in it; memberships are revoked by DROP ROLE.
      if (sqlState(error) !== '3D000') throw error;
      const version = await poolFor(ADMIN_DATABASE).query<{ v: number }>(
        "SELECT current_setting('server_version_num')::int AS v",
      );
      snapshots.push(absentSnapshot(query, version.rows[0]!.v));
    }
  }
  const plan = planGrants({ desired: nothing, applied, snapshots });
  return (await applyPlan(poolFor, plan.statements)).executed;
}

const OWNED = `
  SELECT d.datname::text AS database, s.classid::oid AS classid, s.objid::oid AS objid, s.objsubid,
         CASE WHEN s.dbid = 0 OR d.datname = current_database()
              THEN pg_describe_object(s.classid, s.objid, s.objsubid) END AS description
    FROM pg_shdepend s
    LEFT JOIN pg_database d ON d.oid = s.dbid
   WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype = 'o'
     AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
   ORDER BY 1, 5`;

/** What the role owns anywhere on the server, described where a pool can reach its database. */
async function ownedObjects(
  poolFor: PoolFor,
  role: string,
  known: string | undefined,
): Promise<OwnedObject[]> {
  const { rows } = await poolFor(ADMIN_DATABASE).query<{
    database: string | null;
    classid: string;
    objid: string;
    objsubid: number;
    description: string | null;
  }>(OWNED, [role]);
  const objects: OwnedObject[] = [];
  for (const row of rows) {
    let description = row.description;
    // pg_describe_object only resolves objects of the connected database.
    if (description === null && row.database !== null && row.database === known) {
      const described = await poolFor(row.database).query<{ d: string | null }>(
        'SELECT pg_describe_object($1::oid, $2::oid, $3::int) AS d',
        [row.classid, row.objid, row.objsubid],
      );
      description = described.rows[0]?.d ?? null;
    }
    objects.push({
      database: row.database,
      description: description ?? `object ${row.objid} of catalog ${row.classid}`,
    });
  }
  return objects;
}
