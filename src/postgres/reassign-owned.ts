// Hands everything a role owns to another role and leaves the role holding nothing, so DROP ROLE
// can follow: spec.ownedObjects Reassign (docs/design.md §5, deletion). In every database where
// pg_shdepend mentions the role, one transaction runs REASSIGN OWNED BY <role> TO <target> (when
// the role owns something there), checks that the role now owns nothing there but default
// privileges, and only then runs DROP OWNED BY <role>, which after the reassignment can only revoke
// privileges and drop default-privilege entries: no table, row or extension is ever dropped. The
// plan is pure (planReassignOwned); reassignOwned runs it. Names go through quoteIdentifier.
//
// PostgreSQL's rules, which Azure's admin (a member of azure_pg_admin, not a superuser) meets too:
// REASSIGN OWNED needs the privileges of the old role (INHERIT) and of the new one (INHERIT and
// SET), DROP OWNED those of the old role, and each new owner needs CREATE on the schema of what it
// receives. The admin holds ADMIN OPTION on a role it created, so where it lacks a membership it
// grants one to itself for the length of the transaction and takes it back before COMMIT.
// Azure and the harness: on Azure, azure_pg_admin's members may manage roles and objects of any
// non-restricted role, so the admin may already have the app role's privileges; the receiving role,
// made by the admin (CREATE ROLE), is lent as anywhere. The harness's stand-ins
// (test/harness/pgaadauth-standins.sql) model that with memberships: azure_pg_admin is a member
// (INHERIT, not SET) of every principal, so the admin has the app role's privileges and only the
// receiving role (ADMIN OPTION from CREATE ROLE, without INHERIT or SET) is lent. Ending the role's
// sessions needs its privileges too; where that is refused (42501) the check before DROP OWNED
// still guards the data.
import type pg from 'pg';
import { assertManageableRole, quoteIdentifier } from './identifiers.ts';

/** One pg_shdepend row that mentions the role. */
export interface RoleDependency {
  /** The database it is in; null for a shared object (a database, a tablespace). */
  database: string | null;
  /** The role owns it (deptype 'o'); else the role holds a privilege on it or is named by a policy. */
  owner: boolean;
  /** A pg_default_acl entry (ALTER DEFAULT PRIVILEGES): owned, but holds no data. */
  defaultPrivileges: boolean;
}

/** What one database's transaction runs. */
export interface ReassignStep {
  database: string;
  /** REASSIGN OWNED, present when the role owns something here (or owns a shared object). */
  reassign?: string;
  /** DROP OWNED: run last, once the role owns nothing here but default privileges. */
  dropOwned: string;
  /** Objects (not default-privilege entries) that change owner here; shared ones count in the first step. */
  objects: number;
}

export interface ReassignPlanInput {
  role: string;
  to: string;
  dependencies: readonly RoleDependency[];
  /** Where shared objects are handled when no other database is visited (`postgres`). */
  adminDatabase: string;
}

/**
 * The transactions that leave `role` with nothing, one per database that pg_shdepend names, in
 * name order. Shared objects (privileges on a database, a database the role owns) are handled by
 * whichever database is visited first; with none, by `adminDatabase`. Throws for a reserved or
 * invalid name, or a role reassigned to itself.
 */
export function planReassignOwned(input: ReassignPlanInput): ReassignStep[] {
  assertManageableRole(input.role);
  assertManageableRole(input.to);
  if (input.role === input.to) throw new Error(`role "${input.role}" cannot be reassigned to itself`);
  const owned = new Map<string, { owns: boolean; objects: number }>();
  let sharedOwned = 0;
  let shared = false;
  for (const dependency of input.dependencies) {
    const counts = (name: string) => {
      const entry = owned.get(name) ?? { owns: false, objects: 0 };
      owned.set(name, entry);
      return entry;
    };
    if (dependency.database === null) {
      shared = true;
      if (dependency.owner) sharedOwned++;
      continue;
    }
    const entry = counts(dependency.database);
    if (dependency.owner) {
      entry.owns = true;
      if (!dependency.defaultPrivileges) entry.objects++;
    }
  }
  if (shared && owned.size === 0) owned.set(input.adminDatabase, { owns: false, objects: 0 });
  const role = quoteIdentifier(input.role);
  const to = quoteIdentifier(input.to);
  return [...owned.keys()].sort().map((database, index) => {
    const entry = owned.get(database)!;
    // REASSIGN OWNED also moves the shared objects the role owns, wherever it runs: once is enough.
    const sharedHere = index === 0 ? sharedOwned : 0;
    return {
      database,
      ...(entry.owns || sharedHere > 0 ? { reassign: `REASSIGN OWNED BY ${role} TO ${to}` } : {}),
      dropOwned: `DROP OWNED BY ${role}`,
      objects: entry.objects + sharedHere,
    };
  });
}

/** The reassignment could not be done; nothing was dropped. `reason` is a controller Reason. */
export class ReassignOwnedError extends Error {
  override readonly name = 'ReassignOwnedError';
  readonly reason = 'ReassignOwnedFailed';
  readonly database: string | undefined;
  readonly code: string | undefined;

  constructor(message: string, options: { database?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.database = options.database;
    this.code = (options.cause as { code?: string } | undefined)?.code;
  }
}

function sqlState(error: unknown): string | undefined {
  return (error as { code?: unknown })?.code as string | undefined;
}

/** What to change, for the PostgreSQL errors a reassignment meets. */
export function reassignHint(error: unknown, role: string, to: string): string {
  const message = (error as Error)?.message ?? '';
  const code = sqlState(error);
  if (code === '42501' && /permission denied for schema/i.test(message))
    return `role "${to}" needs CREATE on that schema to own objects in it (PostgreSQL's rule for a new owner): grant it, or reassign to a role that has it`;
  if (code === '42501')
    return `the operator's admin role needs the privileges of both "${role}" and "${to}" (on Azure an Entra admin is a member of azure_pg_admin, which gives them; elsewhere grant the admin "${to}" WITH ADMIN OPTION)`;
  if (code === '55P03' || code === '40P01')
    return `an object of "${role}" is in use; the operator tries again`;
  return 'fix the cause or set spec.ownedObjects.policy to Keep; the operator tries again';
}

export interface ReassignResult {
  /** The databases visited, in order. */
  databases: string[];
  /** Objects that changed owner (not counting default-privilege entries). */
  objects: number;
  /** Sessions of the role that were ended first. */
  sessionsEnded: number;
}

export interface ReassignInput {
  role: string;
  to: string;
  adminDatabase: string;
  /** The advisory lock (two int4 keys) the operator's grant transactions take in each database. */
  lock: readonly [number, number];
}

const DEPENDENCIES = `
  SELECT CASE WHEN s.dbid = 0 THEN NULL ELSE d.datname::text END AS database,
         s.deptype = 'o' AS owner,
         s.classid = 'pg_catalog.pg_default_acl'::regclass AS default_privileges
    FROM pg_catalog.pg_shdepend s
    LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
   WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass
     AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
     AND (s.dbid = 0 OR d.oid IS NOT NULL)`;

/** Objects the role still owns in this database or among shared ones, default privileges aside. */
const STILL_OWNED = `
  SELECT count(*)::int AS n
    FROM pg_catalog.pg_shdepend s
   WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass
     AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
     AND s.deptype = 'o'
     AND s.classid <> 'pg_catalog.pg_default_acl'::regclass
     AND s.dbid IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))`;

/**
 * Moves what `role` owns to `to` in every database, then revokes what is left to it, so that
 * DROP ROLE can follow. The role should have NOLOGIN already: its open sessions are ended first,
 * so nothing it runs can create an object while its objects change hands. Throws
 * ReassignOwnedError, with nothing dropped and the database of the failure as it was.
 */
export async function reassignOwned(
  poolFor: (database: string) => pg.Pool,
  input: ReassignInput,
): Promise<ReassignResult> {
  const admin = poolFor(input.adminDatabase);
  const dependencies = (
    await admin.query<{ database: string | null; owner: boolean; default_privileges: boolean }>(
      DEPENDENCIES,
      [input.role],
    )
  ).rows.map((row) => ({
    database: row.database,
    owner: row.owner,
    defaultPrivileges: row.default_privileges,
  }));
  const steps = planReassignOwned({ ...input, dependencies });
  const result: ReassignResult = { databases: [], objects: 0, sessionsEnded: 0 };
  if (steps.length === 0) return result;
  if (steps.some((step) => step.reassign)) {
    const target = await admin.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1', [input.to]);
    if (!target.rowCount) {
      throw new ReassignOwnedError(
        `role "${input.role}" owns objects and spec.ownedObjects.reassignTo names role "${input.to}", which does not exist on the server: create it (a group role that may own the app's objects), or set spec.ownedObjects.policy to Keep to keep "${input.role}" without login instead; its objects were left as they were`,
      );
    }
  }
  const version = (await admin.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v"))
    .rows[0]!.v;
  result.sessionsEnded = await endSessions(admin, input, version);
  for (const step of steps) {
    await runStep(poolFor(step.database), step, input, version);
    result.databases.push(step.database);
    result.objects += step.objects;
  }
  return result;
}

/** A membership the admin lends itself for one transaction, and how to give it back. */
interface Borrowed {
  restore: string;
}

/** INHERIT and SET options of a membership, and pg_has_role(..., 'SET'), arrived in PostgreSQL 16. */
const MEMBERSHIP_OPTIONS = 160000;

/**
 * Makes sure the current user has the privileges of `role` (and may SET ROLE to it with `set`),
 * granting itself the membership when it may (ADMIN OPTION on the role; before PostgreSQL 16,
 * CREATEROLE). Returns what gives it back, or undefined when nothing was granted (held already,
 * or not grantable: then the statement that needs it reports the refusal).
 */
async function borrow(
  client: pg.PoolClient,
  role: string,
  set: boolean,
  version: number,
): Promise<Borrowed | undefined> {
  const options = version >= MEMBERSHIP_OPTIONS;
  const { rows } = await client.query<{
    inherits: boolean;
    can_set: boolean;
    inherit_option: boolean | null;
    set_option: boolean | null;
  }>(
    options
      ? `SELECT pg_has_role(current_user, r.oid, 'USAGE') AS inherits,
                pg_has_role(current_user, r.oid, 'SET') AS can_set,
                m.inherit_option, m.set_option
           FROM pg_catalog.pg_roles r
           LEFT JOIN pg_catalog.pg_auth_members m
             ON m.roleid = r.oid AND m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
            AND m.grantor = m.member
          WHERE r.rolname = $1`
      : `SELECT pg_has_role(current_user, r.oid, 'USAGE') AS inherits, true AS can_set,
                NULL::boolean AS inherit_option, NULL::boolean AS set_option
           FROM pg_catalog.pg_roles r WHERE r.rolname = $1`,
    [role],
  );
  const row = rows[0];
  if (!row || (row.inherits && (!set || row.can_set))) return undefined;
  const quoted = quoteIdentifier(role);
  const grant = options
    ? `GRANT ${quoted} TO CURRENT_USER WITH INHERIT TRUE, SET ${set ? 'TRUE' : 'FALSE'}`
    : `GRANT ${quoted} TO CURRENT_USER`;
  await client.query('SAVEPOINT borrow');
  try {
    await client.query(grant);
  } catch (error) {
    if (sqlState(error) !== '42501') throw error;
    await client.query('ROLLBACK TO SAVEPOINT borrow');
    return undefined;
  }
  await client.query('RELEASE SAVEPOINT borrow');
  return {
    restore:
      row.inherit_option === null
        ? `REVOKE ${quoted} FROM CURRENT_USER`
        : `GRANT ${quoted} TO CURRENT_USER WITH INHERIT ${row.inherit_option ? 'TRUE' : 'FALSE'}, SET ${row.set_option ? 'TRUE' : 'FALSE'}`,
  };
}

async function giveBack(client: pg.PoolClient, borrowed: Array<Borrowed | undefined>): Promise<void> {
  for (const b of borrowed.reverse()) if (b) await client.query(b.restore);
}

/** Ends the role's open sessions (after NOLOGIN none come back); returns how many were ended. */
async function endSessions(admin: pg.Pool, input: ReassignInput, version: number): Promise<number> {
  const client = await admin.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const borrowed = await borrow(client, input.role, false, version);
    let ended = 0;
    await client.query('SAVEPOINT terminate');
    try {
      // From PostgreSQL 14 it waits up to 5 s for each to exit, so none is still running a
      // statement afterwards.
      const { rows } = await client.query<{ ended: boolean }>(
        `SELECT pg_terminate_backend(pid${version >= 140000 ? ', 5000' : ''}) AS ended FROM pg_catalog.pg_stat_activity
          WHERE usesysid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1) AND pid <> pg_backend_pid()`,
        [input.role],
      );
      ended = rows.filter((row) => row.ended).length;
    } catch (error) {
      // Not allowed to signal them: the check before DROP OWNED still guards the data.
      if (sqlState(error) !== '42501') throw error;
      await client.query('ROLLBACK TO SAVEPOINT terminate');
    }
    await giveBack(client, [borrowed]);
    await client.query('COMMIT');
    return ended;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw new ReassignOwnedError(
      `could not end the open sessions of role "${input.role}": ${(error as Error).message}; ${reassignHint(error, input.role, input.to)}`,
      { database: input.adminDatabase, cause: error },
    );
  } finally {
    client.release(broken);
  }
}

async function runStep(
  pool: pg.Pool,
  step: ReassignStep,
  input: ReassignInput,
  version: number,
): Promise<void> {
  const client = await pool.connect();
  let broken = false;
  const onError = (): void => {
    broken = true;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    await client.query("SET LOCAL lock_timeout = '10s'");
    // Takes turns with the operator's grant transactions on this database (catalog rows they share).
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...input.lock]);
    const borrowed = [await borrow(client, input.role, false, version)];
    if (step.reassign) {
      borrowed.push(await borrow(client, input.to, true, version));
      await client.query(step.reassign);
    }
    const left = await client.query<{ n: number }>(STILL_OWNED, [input.role]);
    if (left.rows[0]!.n > 0) {
      throw new ReassignOwnedError(
        `role "${input.role}" owns ${left.rows[0]!.n} object(s) in database "${step.database}" that were not reassigned (made while its objects changed hands): nothing was dropped; the operator tries again`,
        { database: step.database },
      );
    }
    await client.query(step.dropOwned);
    await giveBack(client, borrowed);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    if (error instanceof ReassignOwnedError) throw error;
    throw new ReassignOwnedError(
      `could not reassign the objects of role "${input.role}" to "${input.to}" in database "${step.database}": ${(error as Error).message}; ${reassignHint(error, input.role, input.to)}; nothing was dropped`,
      { database: step.database, cause: error },
    );
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
