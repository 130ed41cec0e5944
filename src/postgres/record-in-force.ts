// What status.applied records after a grant plan ran with some statements refused (grant-refusals
// .ts): exactly what is in force, so that the next reconcile and a deletion act on the truth. A
// record that claimed a refused grant would have the operator revoke, later, a privilege it never
// gave (someone else's, or one it may not touch); one that left out a revoke that was refused
// would forget a privilege it did give. So:
//   in force = desired − refused grants + refused revokes (they are still held, and ours)
// in the shape of spec.grants. A grant untouched by refusals is kept as written (a whole-schema
// grant stays whole-schema); one that lost objects or privileges is rewritten as explicit lists
// (`tables`, and `sequences`, which only a record has), grouped by the privileges left. Pure.
import type { Grant, GrantTarget } from '../api/types.ts';
import {
  type AccessRecord,
  normaliseRecord,
  type PlannedStatement,
  type RecordedSequencesGrant,
} from './grant-plan.ts';
import {
  type ConcretePrivilege,
  concretePrivileges,
  entryKey,
  expand,
  KIND_TARGET,
  type ObjectKind,
  type PrivilegeEntry,
  type PrivilegeSnapshot,
} from './privilege-set.ts';

/** A statement the server refused (after splitting), as planned. */
export type RefusedStatement = Pick<PlannedStatement, 'action' | 'entries' | 'membership'>;

export interface InForceInput {
  /** What the plan was made for (normalised here). */
  desired: AccessRecord;
  /** currentPrivileges() of desired's role in desired's database, as the plan used it. */
  snapshot: PrivilegeSnapshot;
  /** Every statement refused; the rest ran. */
  refused: readonly RefusedStatement[];
}

export interface InForce {
  record: AccessRecord;
  /**
   * Refused revokes in another database than desired's (the spec moved to another database): the
   * record of one database cannot hold them. The caller keeps its earlier record instead.
   */
  elsewhere: RefusedStatement[];
}

interface ObjectPrivileges {
  kind: ObjectKind;
  schema: string;
  name: string;
  privileges: Set<ConcretePrivilege>;
}

const objectKey = (kind: ObjectKind, schema: string, name: string): string =>
  JSON.stringify([kind, schema, name]);

export function recordInForce(input: InForceInput): InForce {
  const desired = normaliseRecord(input.desired);
  const { snapshot } = input;
  const refusedGrants = new Set<string>();
  const refusedJoins = new Set<string>();
  const unrevoked: PrivilegeEntry[] = [];
  const unleft: string[] = [];
  const elsewhere: RefusedStatement[] = [];
  for (const statement of input.refused) {
    if (statement.membership) {
      if (statement.action === 'grant') refusedJoins.add(statement.membership.group);
      else unleft.push(statement.membership.group);
      continue;
    }
    const entries = statement.entries ?? [];
    if (statement.action === 'grant') {
      for (const entry of entries) refusedGrants.add(entryKey(entry));
    } else if (entries.every((entry) => entry.role === desired.role && entry.database === desired.database)) {
      unrevoked.push(...entries);
    } else {
      elsewhere.push(statement);
    }
  }
  if (refusedGrants.size === 0 && refusedJoins.size === 0 && unrevoked.length === 0 && unleft.length === 0) {
    return { record: desired, elsewhere };
  }

  const memberOf = [...desired.memberOf.filter((group) => !refusedJoins.has(group)), ...unleft];
  const kept: Grant[] = [];
  // Objects whose grants were rewritten, by target: what is left in force on each.
  const rewritten = new Map<GrantTarget, Map<string, ObjectPrivileges>>();
  const add = (
    target: GrantTarget,
    object: Omit<ObjectPrivileges, 'privileges'>,
    privileges: Iterable<ConcretePrivilege>,
  ) => {
    const objects = rewritten.get(target) ?? new Map<string, ObjectPrivileges>();
    rewritten.set(target, objects);
    const key = objectKey(object.kind, object.schema, object.name);
    const found = objects.get(key) ?? {
      kind: object.kind,
      schema: object.schema,
      name: object.name,
      privileges: new Set<ConcretePrivilege>(),
    };
    objects.set(key, found);
    for (const privilege of privileges) found.privileges.add(privilege);
  };

  for (const grant of desired.grants) {
    const entries = expand(
      { role: desired.role, database: desired.database, memberOf: [], grants: [grant] },
      snapshot,
    ).entries;
    if (!entries.some((entry) => refusedGrants.has(entryKey(entry)))) {
      kept.push(grant);
      continue;
    }
    for (const entry of entries) {
      if (!refusedGrants.has(entryKey(entry))) add(grant.target, entry, [entry.privilege]);
    }
    // Tables the grant names that do not exist (yet) stay on record as they were: nothing of
    // theirs is in force, and nothing is revoked for them (GrantTargetNotFound reports them).
    if (grant.target === 'tables' && grant.tables !== undefined) {
      const privileges = concretePrivileges('tables', grant.privileges, snapshot.serverVersionNum);
      for (const name of grant.tables) {
        if (!entries.some((entry) => entry.name === name))
          add('tables', { kind: 'table', schema: grant.schema, name }, privileges);
      }
    }
  }
  for (const entry of unrevoked) add(KIND_TARGET[entry.kind], entry, [entry.privilege]);

  const grants = [...kept];
  for (const [target, objects] of rewritten)
    grants.push(...grantsOf(target, [...objects.values()], desired.database));
  return { record: normaliseRecord({ ...desired, memberOf, grants }), elsewhere };
}

/** Objects of one target as grants: one per object for a database or schema, else lists per privilege set. */
function grantsOf(target: GrantTarget, objects: ObjectPrivileges[], database: string): Grant[] {
  const grants: Grant[] = [];
  const bySet = new Map<string, { schema: string; privileges: ConcretePrivilege[]; names: string[] }>();
  for (const object of objects) {
    if (object.privileges.size === 0) continue;
    const privileges = [...object.privileges];
    if (target === 'database') {
      if (object.name === database) grants.push({ target: 'database', privileges } as Grant);
      continue;
    }
    if (target === 'schema') {
      grants.push({ target: 'schema', schema: object.schema, privileges } as Grant);
      continue;
    }
    const key = JSON.stringify([object.schema, privileges.sort()]);
    const group = bySet.get(key) ?? { schema: object.schema, privileges, names: [] };
    bySet.set(key, group);
    group.names.push(object.name);
  }
  for (const { schema, privileges, names } of bySet.values()) {
    grants.push(
      target === 'tables'
        ? ({ target: 'tables', schema, tables: names, privileges } as Grant)
        : ({ target: 'sequences', schema, sequences: names, privileges } as RecordedSequencesGrant),
    );
  }
  return grants;
}
