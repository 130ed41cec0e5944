// Which watch events reconcile what (src/controller/event-filters.ts): a status-only update
// reconciles nothing; related resources are re-queued only when something their verdict or shared
// state depends on changed. Pure: bindings and claims read from object bodies.
import { describe, expect, it } from 'vitest';
import { type Binding, bindingOf } from '../../../src/api/binding-index.ts';
import { ACCESS_KIND } from '../../../src/api/constants.ts';
import type { EntraDatabaseAccess } from '../../../src/api/types.ts';
import { claimOf, type RoleClaim } from '../../../src/controller/database-role-index.ts';
import { needsReconcile, relationsChanged, waitsForFicRoom } from '../../../src/controller/event-filters.ts';
import { type AccessBody, accessBody, IDENTITY } from '../../support/controller-fakes.ts';

const Y =
  '/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1';

/** The resource before every change below: generation 1, SA app, identity IDENTITY, role app. */
const BEFORE: AccessBody = {
  generation: 1,
  status: {
    observedGeneration: 1,
    identity: { resourceId: IDENTITY, clientId: 'client-1', tenantId: 'tenant-1' },
    federatedCredential: { name: 'c_apps_app', identityResourceId: IDENTITY },
    applied: { role: 'app' },
  },
};

const object = (over: AccessBody = {}): EntraDatabaseAccess => accessBody({ ...BEFORE, ...over });
const bindingFor = (a: EntraDatabaseAccess): Binding => bindingOf(a, ACCESS_KIND) as Binding;
const claimFor = (a: EntraDatabaseAccess): RoleClaim => claimOf(a) as RoleClaim;

/** The status after a reconcile wrote something new (no spec change). */
const NEW_STATUS: EntraDatabaseAccess['status'] = {
  observedGeneration: 1,
  conditions: [
    { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'ok', lastTransitionTime: 't' },
  ],
  identity: { resourceId: IDENTITY, clientId: 'client-2', tenantId: 'tenant-1' },
  federatedCredential: { name: 'c_apps_app', identityResourceId: IDENTITY },
  staleFederatedCredentials: [{ identityResourceId: Y, name: 'old' }],
  applied: { role: 'app' },
};

describe('needsReconcile', () => {
  it.each<{ case: string; after: AccessBody; reconcile: boolean }>([
    { case: 'nothing changed (a resync)', after: {}, reconcile: false },
    { case: 'a status-only update', after: { status: NEW_STATUS }, reconcile: false },
    {
      case: 'a spec change (generation bumped)',
      after: { generation: 2, spec: { serviceAccountName: 'other' } },
      reconcile: true,
    },
    { case: 'a generation bump alone', after: { generation: 2 }, reconcile: true },
    {
      case: 'a spec change the apiserver did not count (same generation)',
      after: { spec: { roleName: 'x' } },
      reconcile: false,
    },
    { case: 'the start of a deletion', after: { deleting: true }, reconcile: true },
    {
      case: 'the start of a deletion with a generation bump',
      after: { deleting: true, generation: 2 },
      reconcile: true,
    },
  ])('$case → $reconcile', ({ after, reconcile }) => {
    expect(needsReconcile(bindingFor(object()), bindingFor(object(after)))).toBe(reconcile);
  });

  it.each<{ case: string; before: Binding | undefined; after: Binding | undefined }>([
    { case: 'an add (nothing before)', before: undefined, after: bindingFor(object()) },
    {
      case: 'a delete, or an object that no longer binds (nothing after)',
      before: bindingFor(object()),
      after: undefined,
    },
    { case: 'neither binds', before: undefined, after: undefined },
  ])('$case → true', ({ before, after }) => {
    expect(needsReconcile(before, after)).toBe(true);
  });

  it('a re-created object (a new uid at the same generation) → true', () => {
    const recreated = { ...bindingFor(object()), uid: 'uid-other' };
    expect(needsReconcile(bindingFor(object()), recreated)).toBe(true);
  });

  it.each<{ case: string; after: AccessBody; reconcile: boolean }>([
    { case: 'our finalizer removed by someone else', after: {}, reconcile: true },
    { case: 'our finalizer removed as the deletion finishes', after: { deleting: true }, reconcile: true },
  ])('$case → $reconcile', ({ after, reconcile }) => {
    expect(needsReconcile(bindingFor(object()), bindingFor(object(after)), false)).toBe(reconcile);
  });

  it('a status-only update while deleting with the finalizer gone → false', () => {
    const deleting = bindingFor(object({ deleting: true }));
    expect(needsReconcile(deleting, deleting, false)).toBe(false);
  });
});

describe('relationsChanged', () => {
  const before = object();
  const with_ = (over: AccessBody) => object(over);

  it.each<{ case: string; after: EntraDatabaseAccess; changed: boolean }>([
    { case: 'nothing changed', after: with_({}), changed: false },
    {
      case: 'a status-only update (resolved identity, stale FIC, conditions)',
      after: with_({ status: NEW_STATUS }),
      changed: false,
    },
    { case: 'a generation bump alone', after: with_({ generation: 2 }), changed: false },
    {
      case: 'another ServiceAccount',
      after: with_({ generation: 2, spec: { serviceAccountName: 'other' } }),
      changed: true,
    },
    {
      case: 'another identity',
      after: with_({ generation: 2, spec: { identity: { resourceId: Y } } }),
      changed: true,
    },
    { case: 'the start of a deletion', after: with_({ deleting: true }), changed: true },
    { case: 'another role name', after: with_({ generation: 2, spec: { roleName: 'app2' } }), changed: true },
    {
      case: 'another memberOf',
      after: with_({ generation: 2, spec: { memberOf: ['writers'] } }),
      changed: true,
    },
    { case: 'another server', after: with_({ generation: 2, spec: { serverRef: 'pg2' } }), changed: true },
    {
      case: 'a login role the status records (connection.user)',
      after: with_({ status: { ...BEFORE.status, connection: { user: 'adopted' } } }),
      changed: true,
    },
    {
      case: 'a grant change (no role name involved)',
      after: with_({ generation: 2, spec: { grants: [] } }),
      changed: false,
    },
  ])('$case → $changed', ({ after, changed }) => {
    expect(
      relationsChanged(
        { binding: bindingFor(before), claim: claimFor(before) },
        { binding: bindingFor(after), claim: claimFor(after) },
      ),
    ).toBe(changed);
  });

  it.each<{ case: string; before: Binding | undefined; after: Binding | undefined }>([
    { case: 'an add', before: undefined, after: bindingFor(before) },
    { case: 'a delete', before: bindingFor(before), after: undefined },
  ])('$case → true', ({ before: b, after: a }) => {
    const claim = claimFor(before);
    expect(relationsChanged({ binding: b, claim }, { binding: a, claim })).toBe(true);
  });

  it('the same identity re-cased is no change of the binding', () => {
    const recased = with_({ generation: 2, spec: { identity: { resourceId: IDENTITY.toUpperCase() } } });
    expect(relationsChanged({ binding: bindingFor(before) }, { binding: bindingFor(recased) })).toBe(false);
  });

  it('a claim that appears or goes (the binding unchanged) is a change', () => {
    const binding = bindingFor(before);
    expect(relationsChanged({ binding, claim: undefined }, { binding, claim: claimFor(before) })).toBe(true);
    expect(relationsChanged({ binding, claim: claimFor(before) }, { binding })).toBe(true);
    expect(relationsChanged({ binding }, { binding })).toBe(false);
  });
});

describe('waitsForFicRoom', () => {
  const identity =
    '/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id0';
  const refused = (reason: string, resourceId = identity) => ({
    spec: { identity: { resourceId } },
    status: { conditions: [{ type: 'FederatedCredentialReady', reason }] },
  });

  it('is true for a resource on that identity refused at the 20-FIC limit, in any casing of its ID', () => {
    expect(waitsForFicRoom(refused('FederatedCredentialLimitReached'), identity.toLowerCase())).toBe(true);
  });

  it.each([
    ['refused for another reason', refused('FederatedCredentialRejected'), identity],
    ['Ready', refused('UpToDate'), identity],
    ['on another identity', refused('FederatedCredentialLimitReached'), `${identity}-other`],
    ['without a status', { spec: { identity: { resourceId: identity } } }, identity],
    ['gone', undefined, identity],
  ])('is false for a resource %s', (_why, resource, deletedFrom) => {
    expect(waitsForFicRoom(resource, deletedFrom)).toBe(false);
  });
});
