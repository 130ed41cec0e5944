// The deletion path of the access reconciler on a role shared by one identity's resources (one
// role per principal on a server), with fakes for the cluster, Azure and the database:
// - a resource of the same identity that has not applied the role yet (created a moment ago) keeps
//   the role from being dropped; before the fix only resources that had already applied it did,
//   so a deletion racing with a new resource of the same identity dropped (or left NOLOGIN) the
//   role the new one had just been granted;
// - what the sharers ask for is passed on to be kept (not revoked);
// - a sharer that the admission checks refuse (its namespace may not use the identity) neither
//   keeps the role nor keeps privileges.
import { describe, expect, it } from 'vitest';
import type { EntraDatabaseAccess, Grant } from '../../../src/api/types.ts';
import type { DatabaseOps } from '../../../src/controller/database.ts';
import {
  accessBody,
  IDENTITY,
  namespaceBody,
  reconciler,
  serverBody,
  world,
} from '../../support/controller-fakes.ts';

const SELECT_ORDERS: Grant = {
  target: 'tables',
  schema: 'public',
  tables: ['orders'],
  privileges: ['SELECT'],
};
const CONNECT: Grant = { target: 'database', privileges: ['CONNECT'] };

function access(
  name: string,
  namespace: string,
  over: { deleting?: boolean; applied?: boolean; grants?: Grant[] } = {},
): EntraDatabaseAccess {
  const grants = over.grants ?? [CONNECT, SELECT_ORDERS];
  return accessBody({
    name,
    namespace,
    created: name === 'a' ? 1000 : 2000,
    deleting: Boolean(over.deleting),
    spec: { serviceAccountName: name, roleName: 'shop_r0', memberOf: [], grants },
    ...(over.applied
      ? {
          status: {
            identity: { resourceId: IDENTITY, clientId: 'c', principalId: 'p', tenantId: 't' },
            federatedCredential: { name: `fic-${name}`, issuer: 'https://issuer', subject: `x:${name}` },
            applied: { server: 'pg', role: 'shop_r0', database: 'shop', memberOf: [], grants },
          },
        }
      : {}),
  });
}

/** Runs the reconcile of the deleted resource `a` among `others`; returns the remove() call. */
async function deleteA(others: EntraDatabaseAccess[]): Promise<Parameters<DatabaseOps['remove']>[0]> {
  const a = access('a', 'apps', { deleting: true, applied: true });
  const w = world({
    access: a,
    // The deletion path works on the live object (the cache may lag).
    live: a,
    others,
    servers: [serverBody(['apps', 'other'])],
    namespaces: [
      namespaceBody('apps', IDENTITY),
      // `other` is opted in but may not use the identity.
      namespaceBody('other', '/subscriptions/00000000-0000-0000-0000-0000000000b2/*'),
    ],
    getIdentity: async () => {
      throw new Error('not on the deletion path');
    },
    ensureFic: async () => {
      throw new Error('not on the deletion path');
    },
    ensure: async () => {
      throw new Error('not on the deletion path');
    },
  });
  await reconciler(w)('apps/a');
  expect(w.removed).toHaveLength(1);
  return w.removed[0]!;
}

describe('deleting one of the resources sharing a role', () => {
  it('drops the role when no other resource uses the identity on the server', async () => {
    const call = await deleteA([]);
    expect(call.dropRole).toBe(true);
    expect(call.keep).toEqual([]);
  });

  it('keeps the role, and what they ask for, for a resource that applied it', async () => {
    const call = await deleteA([access('b', 'apps', { applied: true, grants: [CONNECT] })]);
    expect(call.dropRole).toBe(false);
    expect(call.keep).toEqual([{ database: 'shop', memberOf: [], grants: [CONNECT] }]);
  });

  it('keeps the role for a resource of the same identity that has not applied it yet', async () => {
    const call = await deleteA([access('b', 'apps', { grants: [SELECT_ORDERS] })]);
    expect(call.dropRole).toBe(false);
    expect(call.keep).toEqual([{ database: 'shop', memberOf: [], grants: [SELECT_ORDERS] }]);
  });

  it('lets neither the role nor its privileges be kept by a resource the admission checks refuse', async () => {
    const call = await deleteA([access('b', 'other', { grants: [SELECT_ORDERS] })]);
    expect(call.dropRole).toBe(true);
    expect(call.keep).toEqual([]);
  });
});

describe('spec.ownedObjects on deletion', () => {
  // - Reassign hands remove() the role that receives the objects, only when the role is dropped;
  // - the role is checked again at deletion against the server's allowedMemberOf as it is now:
  //   a role no longer allowed stops the clean-up with ReassignTargetNotAllowed, and nothing is
  //   asked of the database.
  const server = (allowedMemberOf: string[]) => {
    const body = serverBody(['apps']);
    return { ...body, spec: { ...body.spec, allowedMemberOf } };
  };
  function owning(
    ownedObjects: EntraDatabaseAccess['spec']['ownedObjects'],
    over: { deleting?: boolean; applied?: boolean } = {},
  ): EntraDatabaseAccess {
    const base = access('a', 'apps', { deleting: true, applied: true, ...over });
    return { ...base, spec: { ...base.spec, ...(ownedObjects ? { ownedObjects } : {}) } };
  }
  async function run(a: EntraDatabaseAccess, allowed: string[], others: EntraDatabaseAccess[] = []) {
    const w = world({
      access: a,
      live: a,
      others,
      servers: [server(allowed)],
      namespaces: [namespaceBody('apps', IDENTITY)],
    });
    await reconciler(w)('apps/a').catch(() => {});
    return w;
  }

  it('passes the role to reassign to when the role is dropped', async () => {
    const w = await run(owning({ policy: 'Reassign', reassignTo: 'shop_owner' }), ['shop_owner']);
    expect(w.removed).toEqual([expect.objectContaining({ dropRole: true, reassignTo: 'shop_owner' })]);
    expect(w.ficDeletes).toHaveLength(1);
  });

  it('passes none with Keep, or without ownedObjects', async () => {
    for (const ownedObjects of [{ policy: 'Keep' as const }, undefined]) {
      const w = await run(owning(ownedObjects), ['shop_owner']);
      expect(w.removed).toHaveLength(1);
      expect(w.removed[0]).not.toHaveProperty('reassignTo');
    }
  });

  it('passes none while another resource still shares the role (the last one decides)', async () => {
    const w = await run(
      owning({ policy: 'Reassign', reassignTo: 'shop_owner' }),
      ['shop_owner'],
      [access('b', 'apps', { applied: true })],
    );
    expect(w.removed).toEqual([expect.objectContaining({ dropRole: false })]);
    expect(w.removed[0]).not.toHaveProperty('reassignTo');
  });

  it('does not stop for a role no longer allowed while the role is shared: nothing is given away', async () => {
    const w = await run(
      owning({ policy: 'Reassign', reassignTo: 'shop_owner' }),
      ['readers'],
      [access('b', 'apps', { applied: true })],
    );
    expect(w.removed).toEqual([expect.objectContaining({ dropRole: false })]);
    expect(w.warnings).toEqual([]);
  });

  it('stops the clean-up when the server no longer allows the role, touching nothing', async () => {
    const w = await run(owning({ policy: 'Reassign', reassignTo: 'shop_owner' }), ['readers']);
    expect(w.removed).toEqual([]);
    expect(w.ficDeletes).toEqual([]);
    const ready = w.statusWrites.at(-1)?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'ReassignTargetNotAllowed' });
    expect(ready?.message).toMatch(
      /^deleting: spec\.ownedObjects\.reassignTo shop_owner not allowed by EntraDatabaseServer pg .*policy to Keep/,
    );
    expect(w.warnings.map((x) => x.reason)).toEqual(['ReassignTargetNotAllowed']);
  });
});
