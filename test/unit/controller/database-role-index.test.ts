// The PostgreSQL role-name index of EntraDatabaseAccess resources (src/controller/database-role-index.ts):
// which role each asks for, which it logs in as, which groups it joins (or would give its objects
// to), and which resources a change to one can affect. Pure: claims read from object bodies.
import { describe, expect, it } from 'vitest';
import type { EntraDatabaseAccess } from '../../../src/api/types.ts';
import {
  claimCameFirst,
  claimOf,
  DatabaseRoleIndex,
  differentIdentity,
  type RoleClaim,
  roleNameOf,
} from '../../../src/controller/database-role-index.ts';
import { type AccessBody, accessBody, IDENTITY } from '../../support/controller-fakes.ts';

const X = IDENTITY;
const Y =
  '/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1';

/** accessBody with roleName/memberOf/serverRef set directly (undefined roleName: none). */
function access(
  over: AccessBody & {
    roleName?: string | undefined;
    memberOf?: string[];
    server?: string;
    identity?: string;
  } = {},
): EntraDatabaseAccess {
  const { roleName, memberOf, server, identity, ...rest } = over;
  const body = accessBody({
    ...rest,
    spec: {
      ...rest.spec,
      ...(server ? { serverRef: server } : {}),
      ...(memberOf ? { memberOf } : {}),
      ...(identity ? { identity: { resourceId: identity } } : {}),
    },
  });
  if ('roleName' in over) {
    if (roleName === undefined) delete body.spec.roleName;
    else body.spec.roleName = roleName;
  }
  return body;
}

const keys = (claims: readonly RoleClaim[]) => claims.map((c) => `${c.namespace}/${c.name}`).sort();

describe('roleNameOf', () => {
  it.each([
    { case: 'spec.roleName as written', roleName: 'Orders_RW', name: 'a', role: 'Orders_RW' },
    { case: 'metadata.name without spec.roleName', roleName: undefined, name: 'orders', role: 'orders' },
    { case: 'metadata.name for an empty spec.roleName', roleName: '', name: 'orders', role: 'orders' },
  ])('$case', ({ roleName, name, role }) => {
    expect(roleNameOf(access({ name, roleName }))).toBe(role);
  });
});

describe('claimOf', () => {
  it('reads server, identity, creation time, the requested role and lower-cased memberOf', () => {
    const a = access({
      name: 'orders',
      namespace: 'shop',
      created: 4200,
      server: 'pg2',
      roleName: 'Orders',
      memberOf: ['Readers', 'readers', 'WRITERS'],
    });
    expect(claimOf(a)).toEqual({
      namespace: 'shop',
      name: 'orders',
      createdAt: 4200,
      identityResourceId: X,
      server: 'pg2',
      requested: 'Orders',
      loginRoles: ['orders'],
      memberOf: ['readers', 'writers'],
    });
  });

  it.each<{
    case: string;
    roleName?: string | undefined;
    status?: EntraDatabaseAccess['status'];
    login: string[];
  }>([
    { case: 'spec.roleName, lower-cased', roleName: 'App_RW', login: ['app_rw'] },
    { case: 'metadata.name without spec.roleName', roleName: undefined, login: ['a'] },
    {
      case: 'status.applied.role and status.connection.user besides the requested role',
      roleName: 'app',
      status: { applied: { role: 'Adopted' }, connection: { user: 'conn_user' } },
      login: ['app', 'adopted', 'conn_user'],
    },
    {
      case: 'the same role in any case, once',
      roleName: 'App',
      status: { applied: { role: 'APP' }, connection: { user: 'app' } },
      login: ['app'],
    },
    {
      case: 'empty status fields skipped',
      roleName: 'app',
      status: { applied: { role: '' }, connection: {} },
      login: ['app'],
    },
  ])('login roles: $case', ({ status, login, ...rest }) => {
    const a = access({
      ...('roleName' in rest ? { roleName: rest.roleName } : {}),
      ...(status ? { status } : {}),
    });
    expect(claimOf(a)?.loginRoles).toEqual(login);
  });

  it('counts ownedObjects.reassignTo as a group it joins, with policy Reassign only', () => {
    const reassign = access({ memberOf: ['readers'] });
    reassign.spec.ownedObjects = { policy: 'Reassign', reassignTo: 'Shop_Owner' };
    expect(claimOf(reassign)?.memberOf).toEqual(['readers', 'shop_owner']);
    const keep = access({ memberOf: ['readers'] });
    keep.spec.ownedObjects = { policy: 'Keep', reassignTo: 'shop_owner' };
    expect(claimOf(keep)?.memberOf).toEqual(['readers']);
    // So a resource of another identity that starts logging in as it re-queues this one.
    const index = new DatabaseRoleIndex();
    index.set(reassign);
    const owner = access({ name: 'owner', roleName: 'shop_owner', identity: Y });
    expect(keys(index.contenders(claimOf(owner) as RoleClaim))).toEqual(['apps/a']);
  });

  it('has no memberOf for an access without spec.memberOf', () => {
    const a = access();
    delete a.spec.memberOf;
    expect(claimOf(a)?.memberOf).toEqual([]);
  });

  it.each([
    { case: 'no namespace', strip: (a: EntraDatabaseAccess) => delete a.metadata.namespace },
    { case: 'no name', strip: (a: EntraDatabaseAccess) => delete a.metadata.name },
    { case: 'no spec', strip: (a: EntraDatabaseAccess) => delete (a as { spec?: unknown }).spec },
  ])('is undefined with $case', ({ strip }) => {
    const a = access();
    strip(a);
    expect(claimOf(a)).toBeUndefined();
  });
});

describe('claimCameFirst and differentIdentity', () => {
  const claim = (over: Parameters<typeof access>[0]) => claimOf(access(over)) as RoleClaim;
  it.each([
    { case: 'older first', a: { created: 1 }, b: { created: 2 }, first: true },
    { case: 'newer not first', a: { created: 2 }, b: { created: 1 }, first: false },
    {
      case: 'tie: by namespace',
      a: { namespace: 'a', name: 'z' },
      b: { namespace: 'b', name: 'a' },
      first: true,
    },
    { case: 'tie: by name', a: { name: 'b' }, b: { name: 'a' }, first: false },
    { case: 'itself not first', a: {}, b: {}, first: false },
  ])('claimCameFirst: $case', ({ a, b, first }) => {
    expect(claimCameFirst(claim(a), claim(b))).toBe(first);
  });

  it.each([
    { case: 'same ID', a: X, b: X, different: false },
    { case: 'same ID in another casing', a: X, b: X.toUpperCase(), different: false },
    { case: 'two identities', a: X, b: Y, different: true },
  ])('differentIdentity: $case', ({ a, b, different }) => {
    expect(differentIdentity(claim({ identity: a }), claim({ name: 'b', identity: b }))).toBe(different);
  });
});

describe('DatabaseRoleIndex', () => {
  function indexOf(...accesses: EntraDatabaseAccess[]): DatabaseRoleIndex {
    const index = new DatabaseRoleIndex();
    for (const a of accesses) index.set(a);
    return index;
  }

  const fleet = () =>
    indexOf(
      access({ name: 'a', roleName: 'app' }),
      access({ name: 'b', namespace: 'other', roleName: 'APP', identity: Y }),
      access({ name: 'c', roleName: 'app', server: 'pg2' }),
      access({ name: 'd', roleName: 'reporting', status: { connection: { user: 'App' } } }),
      access({ name: 'e', roleName: 'joiner', memberOf: ['App', 'readers'], identity: Y }),
    );

  it.each([
    { server: 'pg', role: 'app', found: ['apps/a', 'other/b'] },
    { server: 'pg', role: 'APP', found: ['apps/a', 'other/b'] },
    { server: 'pg2', role: 'app', found: ['apps/c'] },
    { server: 'pg', role: 'reporting', found: ['apps/d'] },
    { server: 'pg3', role: 'app', found: [] },
    // Requested is spec.roleName only: d logs in as App, but does not ask for it.
    { server: 'pg', role: 'joiner', found: ['apps/e'] },
  ])('requesting($server, $role)', ({ server, role, found }) => {
    expect(keys(fleet().requesting(server, role))).toEqual(found);
  });

  it.each([
    { role: 'app', found: ['apps/a', 'apps/c', 'apps/d', 'other/b'] },
    { role: 'APP', found: ['apps/a', 'apps/c', 'apps/d', 'other/b'] },
    { role: 'reporting', found: ['apps/d'] },
    // Joining a group is not logging in as it.
    { role: 'readers', found: [] },
  ])('loggingInAs($role), on any server', ({ role, found }) => {
    expect(keys(fleet().loggingInAs(role))).toEqual(found);
  });

  it.each([
    { server: 'pg', found: ['apps/a', 'apps/d', 'apps/e', 'other/b'] },
    { server: 'pg2', found: ['apps/c'] },
    { server: 'pg3', found: [] },
  ])('onServer($server)', ({ server, found }) => {
    expect(keys(fleet().onServer(server))).toEqual(found);
  });

  it.each<{ case: string; claim: EntraDatabaseAccess; related: string[] }>([
    {
      case: 'those asking for its role on its server, and those joining its login roles',
      claim: access({ name: 'a', roleName: 'app' }),
      related: ['apps/e', 'other/b'],
    },
    {
      case: 'a role on another server: only that server',
      claim: access({ name: 'c', roleName: 'app', server: 'pg2' }),
      related: ['apps/e'],
    },
    {
      case: 'joiners of a login role it only has from its status',
      claim: access({ name: 'd', roleName: 'reporting', status: { connection: { user: 'App' } } }),
      related: ['apps/e'],
    },
    {
      case: 'nothing for a resource whose roles nobody shares or joins',
      claim: access({ name: 'e', roleName: 'joiner', memberOf: ['App', 'readers'] }),
      related: [],
    },
    {
      case: 'a resource not in the index: its contenders of another identity, never itself',
      claim: access({ name: 'new', roleName: 'App' }),
      related: ['apps/e', 'other/b'],
    },
    {
      case: 'the same role asked for by the same identity: a sharer, not a contender',
      claim: access({ name: 'new', roleName: 'App', identity: Y }),
      related: ['apps/a'],
    },
  ])('contenders: $case', ({ claim, related }) => {
    const found = fleet().contenders(claimOf(claim) as RoleClaim);
    expect(keys(found)).toEqual(related);
  });

  it('set returns undefined for a new claim and the old claim when it replaces one', () => {
    const index = new DatabaseRoleIndex();
    expect(index.set(access({ roleName: 'first' }))).toBeUndefined();
    expect(index.set(access({ roleName: 'second' }))?.requested).toBe('first');
  });

  it("set replaces the old claim's entries in every index", () => {
    const index = indexOf(
      access({
        name: 'a',
        roleName: 'old',
        memberOf: ['old_group'],
        status: { applied: { role: 'old_applied' } },
      }),
      access({ name: 'j', roleName: 'joiner', memberOf: ['new', 'old'] }),
    );
    index.set(access({ name: 'a', roleName: 'new', server: 'pg2', memberOf: ['new_group'] }));

    expect(index.requesting('pg', 'old')).toEqual([]);
    expect(keys(index.requesting('pg2', 'new'))).toEqual(['apps/a']);
    expect(index.loggingInAs('old')).toEqual([]);
    expect(index.loggingInAs('old_applied')).toEqual([]);
    expect(keys(index.loggingInAs('new'))).toEqual(['apps/a']);
    expect(keys(index.onServer('pg'))).toEqual(['apps/j']);
    expect(keys(index.onServer('pg2'))).toEqual(['apps/a']);
    // Contenders for a role find a by what it joins now, not by what it joined.
    const contender = (roleName: string, server?: string) =>
      claimOf(access({ name: 'x', roleName, identity: Y, ...(server ? { server } : {}) })) as RoleClaim;
    expect(index.contenders(contender('old_group'))).toEqual([]);
    expect(keys(index.contenders(contender('new_group')))).toEqual(['apps/a']);
    // By the role it asks for now (and j, which joins `new` and `old`), not the one it asked for.
    expect(keys(index.contenders(contender('new', 'pg2')))).toEqual(['apps/a', 'apps/j']);
    expect(keys(index.contenders(contender('old')))).toEqual(['apps/j']);
  });

  it('delete removes a claim from every index and returns it; an unknown one returns undefined', () => {
    const index = fleet();
    expect(index.delete('apps', 'nope')).toBeUndefined();
    expect(index.delete('apps', 'a')?.requested).toBe('app');
    expect(keys(index.requesting('pg', 'app'))).toEqual(['other/b']);
    expect(keys(index.loggingInAs('app'))).toEqual(['apps/c', 'apps/d', 'other/b']);
    expect(keys(index.onServer('pg'))).toEqual(['apps/d', 'apps/e', 'other/b']);
    expect(index.delete('apps', 'a')).toBeUndefined();
  });

  it('set of an object without a claim changes nothing', () => {
    const index = indexOf(access({ name: 'a' }));
    const nameless = access({ name: 'a' });
    delete nameless.metadata.name;
    expect(index.set(nameless)).toBeUndefined();
    expect(keys(index.onServer('pg'))).toEqual(['apps/a']);
  });
});
