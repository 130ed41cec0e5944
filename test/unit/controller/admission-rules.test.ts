import { describe, expect, it } from 'vitest';
import { Reason } from '../../../src/api/constants.ts';
import type { EntraDatabaseAccess, EntraDatabaseServer } from '../../../src/api/types.ts';
import { roleNameOf } from '../../../src/controller/database-role-index.ts';
import { type NamespaceView, operatorIdentityRefusal } from '../../../src/controller/guards/binding-rules.ts';
import { checkAccess as runChain } from '../../../src/controller/guards/database-rules.ts';
import { matchesSelector } from '../../../src/controller/label-selector.ts';
import { indexesOf } from '../../support/controller-fakes.ts';

/** One resource against the others in the cluster, as the controller's indexes hold them. */
interface GuardInput {
  access: EntraDatabaseAccess;
  namespace: NamespaceView | undefined;
  server: EntraDatabaseServer | undefined;
  others: EntraDatabaseAccess[];
}

function checkAccess({ access, namespace, server, others }: GuardInput) {
  return runChain({ access, namespace, server, ...indexesOf([access, ...others]) });
}

/** The resolved-identity rule as a verdict, the way the tests below read it. */
function checkResolvedIdentity(
  access: EntraDatabaseAccess,
  identity: { clientId: string; principalId: string },
  operator: Parameters<typeof operatorIdentityRefusal>[2],
) {
  const refusal = operatorIdentityRefusal(access.spec.identity.resourceId, identity, operator);
  return refusal ? { ok: false as const, ...refusal } : { ok: true as const, roleName: roleNameOf(access) };
}

const SUB = '00000000-0000-0000-0000-000000000001';
const id = (rg: string, name: string) =>
  `/subscriptions/${SUB}/resourceGroups/${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;

function access(
  overrides: Partial<EntraDatabaseAccess['spec']> = {},
  meta: Partial<EntraDatabaseAccess['metadata']> = {},
): EntraDatabaseAccess {
  return {
    apiVersion: 'entra-access.io/v1alpha1',
    kind: 'EntraDatabaseAccess',
    metadata: {
      name: 'orders-api',
      namespace: 'orders',
      creationTimestamp: new Date('2026-01-02T00:00:00Z'),
      ...meta,
    },
    spec: {
      serviceAccountName: 'orders-api',
      identity: { resourceId: id('apps', 'orders-api') },
      serverRef: 'orders-pg',
      database: 'orders',
      memberOf: ['orders_rw'],
      ...overrides,
    },
  };
}

const server: EntraDatabaseServer = {
  apiVersion: 'entra-access.io/v1alpha1',
  kind: 'EntraDatabaseServer',
  metadata: { name: 'orders-pg' },
  spec: {
    host: 'orders-pg.postgres.database.azure.com',
    adminRole: 'entra-access-operator',
    allowedNamespaces: { names: ['orders'], selector: { matchLabels: { team: 'payments' } } },
    allowedDatabases: ['orders'],
    allowedMemberOf: ['orders_rw', 'orders_ro'],
  },
};

const namespace: NamespaceView = {
  name: 'orders',
  optedIn: true,
  labels: {},
  allowedIdentities: `${id('apps', 'orders-api')},/subscriptions/${SUB}/resourceGroups/shared/*`,
};

function input(overrides: Partial<GuardInput> = {}): GuardInput {
  return { access: access(), namespace, server, others: [], ...overrides };
}

describe('checkAccess', () => {
  it('passes a resource that meets every rule, and derives the role name', () => {
    expect(checkAccess(input())).toEqual({ ok: true, roleName: 'orders-api' });
    expect(checkAccess(input({ access: access({ roleName: 'orders_app' }) }))).toEqual({
      ok: true,
      roleName: 'orders_app',
    });
  });

  const older = { creationTimestamp: new Date('2026-01-01T00:00:00Z') };
  const newer = { creationTimestamp: new Date('2026-01-03T00:00:00Z') };

  it.each<[string, Partial<GuardInput>, Reason, RegExp]>([
    [
      'namespace missing',
      { namespace: undefined },
      Reason.NamespaceNotOptedIn,
      /annotate it with entra-access.io\/workload-identity=enabled/,
    ],
    [
      'namespace not opted in',
      { namespace: { ...namespace, optedIn: false } },
      Reason.NamespaceNotOptedIn,
      /not opted in/,
    ],
    [
      'identity not on the list',
      { access: access({ identity: { resourceId: id('apps', 'payments-api') } }) },
      Reason.IdentityNotAllowed,
      /add it .* entra-access.io\/allowed-identities/,
    ],
    [
      'no allow-list at all',
      { namespace: { ...namespace, allowedIdentities: undefined } },
      Reason.IdentityNotAllowed,
      /not allowed in namespace orders/,
    ],
    [
      'server missing',
      { server: undefined },
      Reason.ServerNotFound,
      /EntraDatabaseServer orders-pg does not exist/,
    ],
    [
      'namespace not allowed by the server',
      { namespace: { ...namespace, name: 'other' }, access: access({}, { namespace: 'other' }) },
      Reason.ServerNotAllowed,
      /does not allow namespace other/,
    ],
    [
      'server with no allowedNamespaces',
      { server: { ...server, spec: { ...server.spec, allowedNamespaces: undefined } } },
      Reason.ServerNotAllowed,
      /spec.allowedNamespaces/,
    ],
    [
      'database not allowed',
      { access: access({ database: 'billing' }) },
      Reason.DatabaseNotAllowed,
      /database billing is not in spec.allowedDatabases .*\[orders\]/,
    ],
    [
      'memberOf azure_pg_admin',
      { access: access({ memberOf: ['orders_rw', 'azure_pg_admin'] }) },
      Reason.MemberOfNotAllowed,
      /memberOf azure_pg_admin not allowed/,
    ],
    [
      'reserved role name',
      { access: access({ roleName: 'pg_monitor' }) },
      Reason.RoleNameReserved,
      /reserved/,
    ],
    ['role name postgres', { access: access({ roleName: 'Postgres' }) }, Reason.RoleNameReserved, /reserved/],
    [
      'the admin role',
      { access: access({ roleName: 'entra-access-operator' }) },
      Reason.RoleNameReserved,
      /admin role/,
    ],
    [
      'role name used by an older resource of another identity',
      {
        others: [
          access(
            {
              identity: { resourceId: id('shared', 'other') },
              serviceAccountName: 'x',
              roleName: 'orders-api',
            },
            { name: 'first', namespace: 'billing', ...older },
          ),
        ],
      },
      Reason.RoleNameInUse,
      /already used by EntraDatabaseAccess billing\/first/,
    ],
    [
      'service account bound to another identity by an older resource',
      {
        others: [
          access(
            { identity: { resourceId: id('shared', 'other') }, roleName: 'other_role' },
            { name: 'first', ...older },
          ),
        ],
      },
      Reason.ServiceAccountConflict,
      /already bound to identity .*shared.*other by EntraDatabaseAccess orders\/first/,
    ],
  ])('refuses when %s', (_name, overrides, reason, message) => {
    const verdict = checkAccess(input(overrides));
    expect(verdict).toMatchObject({ ok: false, reason });
    expect(verdict.ok ? '' : verdict.message).toMatch(message);
  });

  describe('memberOf that no allowedMemberOf can allow (tenant isolation)', () => {
    // A platform team's list with every mistake in it: the checks below must hold regardless.
    const lax: EntraDatabaseServer = {
      ...server,
      spec: {
        ...server.spec,
        allowedMemberOf: [
          'orders_rw',
          'azure_pg_admin',
          'AZURESU',
          'postgres',
          'entra-access-operator',
          'orders-api',
          'billing-api',
          'billing_adopted',
          'pg_read_all_data',
        ],
      },
    };
    const billing = access(
      { identity: { resourceId: id('billing', 'billing-api') }, serviceAccountName: 'billing-api' },
      { name: 'billing-api', namespace: 'billing', ...older },
    );
    // Another identity whose role was adopted under another name (status.connection.user).
    const adopted: EntraDatabaseAccess = {
      ...access(
        { identity: { resourceId: id('billing', 'batch') }, serviceAccountName: 'batch', roleName: 'batch' },
        { name: 'batch', namespace: 'billing', ...older },
      ),
      status: { connection: { user: 'billing_adopted' } } as EntraDatabaseAccess['status'],
    };
    const others = [billing, adopted];

    it.each<[string, string, RegExp]>([
      ['azure_pg_admin', 'azure_pg_admin', /administrative role/],
      ['azuresu in upper case', 'AZURESU', /administrative role/],
      ['postgres', 'postgres', /administrative role/],
      ["the server's admin role", 'entra-access-operator', /the server's admin role/],
      ['the admin role in another case', 'Entra-Access-Operator', /the server's admin role/],
      ["the resource's own role", 'orders-api', /the resource's own role/],
      [
        "another identity's login role",
        'billing-api',
        /login role of EntraDatabaseAccess billing\/billing-api/,
      ],
      [
        "another identity's adopted role",
        'billing_adopted',
        /login role of EntraDatabaseAccess billing\/batch/,
      ],
    ])('refuses %s even when the server lists it', (_name, group, why) => {
      const verdict = checkAccess(
        input({ server: lax, others, access: access({ memberOf: ['orders_rw', group] }) }),
      );
      expect(verdict).toMatchObject({ ok: false, reason: Reason.MemberOfNotAllowed });
      expect(verdict.ok ? '' : verdict.message).toMatch(why);
      expect(verdict.ok ? '' : verdict.message).toMatch(/never grants/);
    });

    it('refuses a login role of another identity whichever server its resource names', () => {
      const elsewhere = access(
        { identity: { resourceId: id('billing', 'billing-api') }, serverRef: 'other-pg-object' },
        { name: 'billing-api', namespace: 'billing', ...older },
      );
      const verdict = checkAccess(
        input({ server: lax, others: [elsewhere], access: access({ memberOf: ['billing-api'] }) }),
      );
      expect(verdict).toMatchObject({ ok: false, reason: Reason.MemberOfNotAllowed });
    });

    it("leaves pg_* predefined roles and a sibling's role of the same identity to the list", () => {
      const sibling = access({ roleName: 'orders_reporting' }, { name: 'orders-reporting', ...older });
      expect(
        checkAccess(
          input({
            server: lax,
            others: [...others, sibling],
            access: access({ memberOf: ['pg_read_all_data'] }),
          }),
        ).ok,
      ).toBe(true);
      expect(
        checkAccess(input({ server: server, others: [billing], access: access({ memberOf: ['orders_ro'] }) }))
          .ok,
      ).toBe(true);
    });
  });

  describe('ownedObjects.reassignTo: held to the rules of memberOf', () => {
    const reassign = (reassignTo: string, policy: 'Keep' | 'Reassign' = 'Reassign') =>
      access({ ownedObjects: { policy, reassignTo } });
    const lax: EntraDatabaseServer = {
      ...server,
      spec: {
        ...server.spec,
        allowedMemberOf: [
          'orders_rw',
          'orders_owner',
          'azure_pg_admin',
          'postgres',
          'entra-access-operator',
          'orders-api',
          'billing-api',
          'pg_read_all_data',
        ],
      },
    };
    const billing = access(
      { identity: { resourceId: id('billing', 'billing-api') }, serviceAccountName: 'billing-api' },
      { name: 'billing-api', namespace: 'billing', ...older },
    );

    it('passes a role the server allows in allowedMemberOf', () => {
      expect(checkAccess(input({ server: lax, access: reassign('orders_owner') })).ok).toBe(true);
    });

    it('ignores reassignTo with policy Keep, and a resource without ownedObjects', () => {
      expect(checkAccess(input({ access: reassign('not_listed', 'Keep') })).ok).toBe(true);
      expect(checkAccess(input({ access: access({ ownedObjects: { policy: 'Keep' } }) })).ok).toBe(true);
    });

    it('refuses a role the server does not list, saying who can allow it and the way out', () => {
      const verdict = checkAccess(input({ access: reassign('orders_owner') }));
      expect(verdict).toMatchObject({ ok: false, reason: Reason.ReassignTargetNotAllowed });
      expect(verdict.ok ? '' : verdict.message).toMatch(
        /reassignTo orders_owner not allowed by EntraDatabaseServer orders-pg \(spec\.allowedMemberOf: \[orders_rw, orders_ro\]\): ask a platform admin.*policy to Keep/,
      );
    });

    it.each<[string, string, RegExp]>([
      ['azure_pg_admin', 'azure_pg_admin', /reserved by PostgreSQL or Azure/],
      ['postgres', 'postgres', /reserved by PostgreSQL or Azure/],
      [
        'a pg_* predefined role (allowed for memberOf)',
        'pg_read_all_data',
        /reserved by PostgreSQL or Azure/,
      ],
      ["the server's admin role", 'entra-access-operator', /the server's admin role/],
      ["the resource's own role", 'orders-api', /the resource's own role/],
      [
        "another identity's login role",
        'billing-api',
        /login role of EntraDatabaseAccess billing\/billing-api/,
      ],
    ])('refuses %s even when the server lists it', (_name, role, why) => {
      const verdict = checkAccess(input({ server: lax, others: [billing], access: reassign(role) }));
      expect(verdict).toMatchObject({ ok: false, reason: Reason.ReassignTargetNotAllowed });
      expect(verdict.ok ? '' : verdict.message).toMatch(why);
      expect(verdict.ok ? '' : verdict.message).toMatch(/never gives objects to/);
    });
  });

  it('lets the first of two conflicting resources keep what it has', () => {
    const first = access(
      { identity: { resourceId: id('shared', 'other') }, roleName: 'other_role' },
      { name: 'later', ...newer },
    );
    expect(checkAccess(input({ others: [first] })).ok).toBe(true);
  });

  it('allows several resources of one identity to share its role and service account', () => {
    const sibling = access({ database: 'orders' }, { name: 'orders-api-reporting', ...older });
    expect(checkAccess(input({ others: [sibling] })).ok).toBe(true);
  });

  it('allows every database with ["*"] and a namespace matched by the selector', () => {
    const open = {
      ...server,
      spec: {
        ...server.spec,
        allowedDatabases: ['*'],
        allowedNamespaces: { selector: { matchLabels: { team: 'payments' } } },
      },
    };
    const ns = { ...namespace, name: 'pay', labels: { team: 'payments' } };
    expect(
      checkAccess(
        input({
          server: open,
          namespace: ns,
          access: access({ database: 'anything' }, { namespace: 'pay' }),
        }),
      ).ok,
    ).toBe(true);
  });

  it('takes metadata.name as the role name when spec.roleName is empty', () => {
    expect(roleNameOf(access({ roleName: '' }, { name: 'from-meta' }))).toBe('from-meta');
  });
});

describe('matchesSelector', () => {
  const labels = { team: 'payments', tier: 'backend' };
  it.each<[string, Parameters<typeof matchesSelector>[1], boolean]>([
    ['empty selector', {}, true],
    ['matchLabels hit', { matchLabels: { team: 'payments' } }, true],
    ['matchLabels miss', { matchLabels: { team: 'orders' } }, false],
    ['In', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend', 'web'] }] }, true],
    ['In on a missing key', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, false],
    [
      'NotIn on a missing key',
      { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] },
      true,
    ],
    ['NotIn hit', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['backend'] }] }, false],
    ['Exists', { matchExpressions: [{ key: 'team', operator: 'Exists' }] }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, false],
    [
      'all must hold',
      {
        matchLabels: { team: 'payments' },
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }],
      },
      false,
    ],
  ])('%s', (_name, selector, expected) => {
    expect(matchesSelector(labels, selector)).toBe(expected);
  });
});

describe('checkResolvedIdentity', () => {
  const resolved = { clientId: 'AAAA-client', principalId: 'bbbb-principal' };

  it("refuses the operator's own identity, by client or principal ID in any case", () => {
    for (const operator of [{ clientId: 'aaaa-CLIENT' }, { principalId: 'BBBB-principal' }]) {
      const verdict = checkResolvedIdentity(access(), resolved, operator);
      expect(verdict).toMatchObject({ ok: false, reason: Reason.IdentityNotAllowed });
      expect(verdict.ok ? '' : verdict.message).toMatch(/entra-access's own identity/);
    }
  });

  it('passes any other identity, and passes when the operator identity is unknown', () => {
    expect(checkResolvedIdentity(access(), resolved, { clientId: 'other' })).toEqual({
      ok: true,
      roleName: 'orders-api',
    });
    expect(checkResolvedIdentity(access(), resolved, {}).ok).toBe(true);
  });
});
