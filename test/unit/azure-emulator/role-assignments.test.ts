// The emulator's Azure RBAC model: built-in roles and how they grant actions, scopes, the ABAC
// condition for constrained delegation, the role assignment PUT rules and errors, propagation,
// the list filters and ARM's request throttling.
import { describe, expect, it } from 'vitest';
import { ArmRequestThrottle } from '../../harness/azure-emulator/arm-request-limits.ts';
import {
  containerScope,
  isAtOrAbove,
  normalizeScope,
  parseAuthorizationPath,
  subscriptionOf,
} from '../../harness/azure-emulator/arm-scopes.ts';
import {
  ARM_REQUEST_LIMITS,
  applySettingsPatch,
  type EmulatorConfig,
  initialSettings,
} from '../../harness/azure-emulator/config.ts';
import {
  grantingAssignment,
  listAtScope,
  type PutContext,
  parseListFilter,
  parseRoleAssignmentBody,
  type RoleAssignmentProperties,
  RoleAssignmentStore,
  roleAssignmentResource,
} from '../../harness/azure-emulator/role-assignments.ts';
import { conditionAllows } from '../../harness/azure-emulator/role-conditions.ts';
import {
  actionMatches,
  BUILT_IN_ROLES,
  canWriteRoleAssignments,
  ROLE_IDS,
  roleById,
  roleByName,
  roleGrants,
} from '../../harness/azure-emulator/role-definitions.ts';

const SUB = '00000000-0000-4000-8000-000000000001';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-data`;
const ACCOUNT = `${RG}/providers/Microsoft.Storage/storageAccounts/stdata`;
const CONTAINER = `${ACCOUNT}/blobServices/default/containers/datasets`;
const PRINCIPAL = '11111111-1111-4111-8111-111111111111';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const NAME = '22222222-2222-4222-8222-222222222222';
const BLOB_READ = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read';
const BLOB_WRITE = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write';
const RA_WRITE = 'Microsoft.Authorization/roleAssignments/write';
const RA_DELETE = 'Microsoft.Authorization/roleAssignments/delete';

function props(role: string, extra: Partial<RoleAssignmentProperties> = {}): RoleAssignmentProperties {
  return {
    roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${role}`,
    principalId: PRINCIPAL,
    principalType: 'ServicePrincipal',
    description: undefined,
    condition: undefined,
    conditionVersion: undefined,
    ...extra,
  };
}

function context(extra: Partial<PutContext> = {}): PutContext {
  return {
    now: 1_000_000,
    tenantId: TENANT,
    principalCreatedAt: 0,
    principalActualType: 'ServicePrincipal',
    replicationSeconds: 30,
    replicationSecondsWithType: 0,
    maxPerSubscription: 4000,
    ...extra,
  };
}

function put(store: RoleAssignmentStore, scope: string, name: string, p: RoleAssignmentProperties, now = 0) {
  const problem = store.checkPut(scope, name, p, context({ now }));
  if (problem) throw new Error(problem.message);
  return store.put(scope, name, p, { now, createdBy: 'ctl', principalType: 'ServicePrincipal' });
}

describe('built-in role definitions', () => {
  it('carry the IDs Microsoft documents, looked up by ID (bare or full) and by name', () => {
    expect(roleByName('Storage Blob Data Reader')?.id).toBe('2a2b9908-6ea1-4ae2-8e65-a410df84e7d1');
    expect(roleByName('storage blob data contributor')?.id).toBe('ba92f5b4-2d11-453d-a403-e96b0029c9fe');
    expect(roleByName('Key Vault Secrets User')?.id).toBe('4633458b-17de-408a-b874-0445c86b69e6');
    expect(roleByName('Owner')?.id).toBe('8e3af657-a8ff-443c-a75c-2fe8c4bcb635');
    expect(roleByName('Contributor')?.id).toBe('b24988ac-6180-42a0-ab88-20f7382dd24c');
    expect(roleByName('User Access Administrator')?.id).toBe('18d7d88d-d35e-4fb5-a5c3-7773c20a72d9');
    expect(roleByName('Role Based Access Control Administrator')?.id).toBe(
      'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
    );
    expect(roleByName('Reader')?.id).toBe('acdd72a7-3385-48ef-bd42-f606fba81ae7');
    expect(roleById(ROLE_IDS.reader)?.roleName).toBe('Reader');
    expect(
      roleById(`/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.owner.toUpperCase()}`)
        ?.roleName,
    ).toBe('Owner');
    expect(
      roleById(`/subscriptions/${SUB}/providers/microsoft.authorization/roleDefinitions/${ROLE_IDS.owner}`),
    ).toBeDefined();
    expect(roleById('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    expect(
      roleById(`/subscriptions/${SUB}/providers/Other/roleDefinitions/${ROLE_IDS.owner}`),
    ).toBeUndefined();
  });

  it('grant by wildcard, case-insensitively, minus NotActions; control and data actions stay apart', () => {
    expect(actionMatches('*/read', 'Microsoft.Storage/storageAccounts/read')).toBe(true);
    expect(
      actionMatches('Microsoft.Authorization/*/Write', 'microsoft.authorization/roleAssignments/write'),
    ).toBe(true);
    expect(actionMatches('Microsoft.Authorization/*', 'Microsoft.AuthorizationX/roleAssignments/write')).toBe(
      false,
    );
    const role = (name: string) => roleByName(name)!;
    expect(roleGrants(role('Contributor'), 'Microsoft.Storage/storageAccounts/write', 'control')).toBe(true);
    expect(roleGrants(role('Contributor'), RA_WRITE, 'control')).toBe(false);
    expect(roleGrants(role('Owner'), BLOB_READ, 'data')).toBe(false);
    expect(roleGrants(role('Storage Blob Data Reader'), BLOB_READ, 'data')).toBe(true);
    expect(roleGrants(role('Storage Blob Data Reader'), BLOB_WRITE, 'data')).toBe(false);
    expect(roleGrants(role('Storage Blob Data Reader'), BLOB_READ, 'control')).toBe(false);
    expect(roleGrants(role('Storage Blob Data Contributor'), BLOB_WRITE, 'data')).toBe(true);
    expect(roleGrants(role('Storage Blob Data Owner'), BLOB_WRITE, 'data')).toBe(true);
  });

  it('mark exactly Owner, User Access Administrator and RBAC Administrator as able to write role assignments', () => {
    expect(
      BUILT_IN_ROLES.filter(canWriteRoleAssignments)
        .map((r) => r.roleName)
        .sort(),
    ).toEqual(['Owner', 'Role Based Access Control Administrator', 'User Access Administrator']);
  });
});

describe('scopes', () => {
  it('collapse the double slash the SDK sends and compare by whole segments, case-insensitively', () => {
    expect(normalizeScope(`//subscriptions/${SUB}//resourceGroups/rg/`)).toBe(
      `/subscriptions/${SUB}/resourceGroups/rg`,
    );
    expect(normalizeScope('')).toBe('/');
    expect(isAtOrAbove('/', CONTAINER)).toBe(true);
    expect(isAtOrAbove(RG.toUpperCase(), CONTAINER)).toBe(true);
    expect(isAtOrAbove(CONTAINER, CONTAINER)).toBe(true);
    expect(isAtOrAbove(CONTAINER, ACCOUNT)).toBe(false);
    // A prefix of a name is not a parent.
    expect(isAtOrAbove(`${ACCOUNT.slice(0, -1)}`, CONTAINER)).toBe(false);
    expect(isAtOrAbove(`${RG}-other`, CONTAINER)).toBe(false);
    expect(subscriptionOf(CONTAINER)).toBe(SUB);
    expect(subscriptionOf('/')).toBeUndefined();
    expect(
      containerScope({ subscriptionId: SUB, resourceGroup: 'rg-data', name: 'stdata' }, 'datasets'),
    ).toBe(CONTAINER);
  });

  it('split Microsoft.Authorization paths into scope and item', () => {
    expect(
      parseAuthorizationPath(
        `//${CONTAINER.slice(1)}/providers/Microsoft.Authorization/roleAssignments/${NAME}`,
      ),
    ).toEqual({
      kind: 'roleAssignment',
      scope: CONTAINER,
      name: NAME,
    });
    expect(parseAuthorizationPath(`${RG}/providers/microsoft.authorization/roleassignments`)).toEqual({
      kind: 'roleAssignments',
      scope: RG,
    });
    expect(
      parseAuthorizationPath(`/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.reader}`),
    ).toEqual({
      kind: 'roleDefinition',
      scope: '/',
      name: ROLE_IDS.reader,
    });
    expect(
      parseAuthorizationPath(`/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions`),
    ).toEqual({
      kind: 'roleDefinitions',
      scope: `/subscriptions/${SUB}`,
    });
    expect(
      parseAuthorizationPath(`${RG}/providers/Microsoft.Authorization/policyAssignments/x`),
    ).toBeUndefined();
    expect(
      parseAuthorizationPath(`${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x`),
    ).toBeUndefined();
  });
});

describe('the ABAC condition of constrained delegation', () => {
  const condition =
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR " +
    `(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${ROLE_IDS.storageBlobDataReader}, ${ROLE_IDS.storageBlobDataContributor.toUpperCase()}})) AND ` +
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR " +
    `(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${ROLE_IDS.storageBlobDataReader}}))`;

  it('allows only the listed roles, for writes and deletes separately', () => {
    expect(conditionAllows(undefined, { action: RA_WRITE, roleDefinitionGuid: ROLE_IDS.owner })).toBe(true);
    expect(
      conditionAllows(condition, { action: RA_WRITE, roleDefinitionGuid: ROLE_IDS.storageBlobDataReader }),
    ).toBe(true);
    expect(
      conditionAllows(condition, {
        action: RA_WRITE,
        roleDefinitionGuid: ROLE_IDS.storageBlobDataContributor,
      }),
    ).toBe(true);
    expect(conditionAllows(condition, { action: RA_WRITE, roleDefinitionGuid: ROLE_IDS.owner })).toBe(false);
    expect(
      conditionAllows(condition, { action: RA_DELETE, roleDefinitionGuid: ROLE_IDS.storageBlobDataReader }),
    ).toBe(true);
    expect(
      conditionAllows(condition, {
        action: RA_DELETE,
        roleDefinitionGuid: ROLE_IDS.storageBlobDataContributor,
      }),
    ).toBe(false);
  });

  it('leaves actions it does not mention alone and fails closed on role lists it cannot read', () => {
    const writeOnly = condition.slice(0, condition.indexOf(' AND '));
    expect(conditionAllows(writeOnly, { action: RA_DELETE, roleDefinitionGuid: ROLE_IDS.owner })).toBe(true);
    const unreadable =
      "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Other] StringEquals 'x'))";
    expect(
      conditionAllows(unreadable, { action: RA_WRITE, roleDefinitionGuid: ROLE_IDS.storageBlobDataReader }),
    ).toBe(false);
  });
});

describe('role assignment PUT rules', () => {
  it('create, read back as ARM returns them, and accept the same PUT again as an update', () => {
    const store = new RoleAssignmentStore();
    const first = put(store, CONTAINER, NAME, props(ROLE_IDS.storageBlobDataReader), 5000);
    expect(first.created).toBe(true);
    expect(roleAssignmentResource(first.assignment)).toMatchObject({
      id: `${CONTAINER}/providers/Microsoft.Authorization/roleAssignments/${NAME}`,
      name: NAME,
      type: 'Microsoft.Authorization/roleAssignments',
      properties: {
        roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.storageBlobDataReader}`,
        principalId: PRINCIPAL,
        principalType: 'ServicePrincipal',
        scope: CONTAINER,
        createdOn: new Date(5000).toISOString(),
      },
    });
    expect(
      put(store, CONTAINER.toLowerCase(), NAME.toUpperCase(), props(ROLE_IDS.storageBlobDataReader)).created,
    ).toBe(false);
    expect(store.all()).toHaveLength(1);
  });

  it('refuse a name that is not a GUID, an unknown role and an invalid principal type', () => {
    const store = new RoleAssignmentStore();
    expect(store.checkPut(CONTAINER, 'not-a-guid', props(ROLE_IDS.reader), context())).toMatchObject({
      status: 400,
      code: 'InvalidRoleAssignmentId',
    });
    expect(
      store.checkPut(CONTAINER, NAME, props('00000000-0000-0000-0000-000000000000'), context()),
    ).toMatchObject({
      status: 400,
      code: 'RoleDefinitionDoesNotExist',
    });
    expect(
      store.checkPut(CONTAINER, NAME, props(ROLE_IDS.reader, { principalType: 'Robot' }), context()),
    ).toMatchObject({
      status: 400,
      code: 'InvalidPrincipalType',
    });
  });

  it('answer PrincipalNotFound during replication unless principalType is set, and for unknown principals', () => {
    const store = new RoleAssignmentStore();
    const young = context({ now: 10_000, principalCreatedAt: 0 });
    const withoutType = props(ROLE_IDS.reader, { principalType: undefined });
    const error = store.checkPut(CONTAINER, NAME, withoutType, young);
    expect(error).toMatchObject({ status: 400, code: 'PrincipalNotFound' });
    expect(error?.message).toContain(
      `Principal ${PRINCIPAL.replace(/-/g, '')} does not exist in the directory ${TENANT}.`,
    );
    expect(
      store.checkPut(CONTAINER, NAME, withoutType, context({ now: 30_000, principalCreatedAt: 0 })),
    ).toBeUndefined();
    expect(store.checkPut(CONTAINER, NAME, props(ROLE_IDS.reader), young)).toBeUndefined();
    expect(
      store.checkPut(
        CONTAINER,
        NAME,
        props(ROLE_IDS.reader),
        context({ now: 10_000, replicationSecondsWithType: 15 }),
      ),
    ).toMatchObject({ code: 'PrincipalNotFound' });
    expect(
      store.checkPut(CONTAINER, NAME, props(ROLE_IDS.reader), context({ principalCreatedAt: undefined })),
    ).toMatchObject({
      code: 'PrincipalNotFound',
    });
  });

  it('answer UnmatchedPrincipalType for a principal type that is not the principal’s', () => {
    const store = new RoleAssignmentStore();
    expect(
      store.checkPut(CONTAINER, NAME, props(ROLE_IDS.reader, { principalType: 'User' }), context()),
    ).toMatchObject({
      status: 400,
      code: 'UnmatchedPrincipalType',
    });
  });

  it('answer RoleAssignmentExists for the same principal, role and scope under another name', () => {
    const store = new RoleAssignmentStore();
    put(store, CONTAINER, NAME, props(ROLE_IDS.storageBlobDataReader));
    const other = '33333333-3333-4333-8333-333333333333';
    const error = store.checkPut(
      CONTAINER.toUpperCase(),
      other,
      props(ROLE_IDS.storageBlobDataReader),
      context(),
    );
    expect(error).toMatchObject({ status: 409, code: 'RoleAssignmentExists' });
    expect(error?.message).toBe(
      `The role assignment already exists. The ID of the existing role assignment is ${NAME.replace(/-/g, '')}.`,
    );
    // Another role, or the same role at another scope, is another assignment.
    expect(
      store.checkPut(CONTAINER, other, props(ROLE_IDS.storageBlobDataContributor), context()),
    ).toBeUndefined();
    expect(store.checkPut(ACCOUNT, other, props(ROLE_IDS.storageBlobDataReader), context())).toBeUndefined();
  });

  it('answer RoleAssignmentUpdateNotPermitted when a PUT changes the principal or role of a name', () => {
    const store = new RoleAssignmentStore();
    put(store, CONTAINER, NAME, props(ROLE_IDS.storageBlobDataReader));
    expect(
      store.checkPut(CONTAINER, NAME, props(ROLE_IDS.storageBlobDataContributor), context()),
    ).toMatchObject({
      status: 400,
      code: 'RoleAssignmentUpdateNotPermitted',
    });
  });

  it('stop at the subscription limit (4,000 by default) with RoleAssignmentLimitExceeded', () => {
    const store = new RoleAssignmentStore();
    const limited = context({ maxPerSubscription: 2 });
    const names = ['a', 'b', 'c'].map((c) => `${c.repeat(8)}-0000-4000-8000-000000000000`);
    for (const [i, name] of names.slice(0, 2).entries()) {
      const p = props(ROLE_IDS.storageBlobDataReader, { principalId: `${i}${PRINCIPAL.slice(1)}` });
      expect(store.checkPut(CONTAINER, name, p, limited)).toBeUndefined();
      store.put(CONTAINER, name, p, { now: 0, createdBy: 'ctl', principalType: 'ServicePrincipal' });
    }
    expect(store.checkPut(RG, names[2]!, props(ROLE_IDS.reader), limited)).toMatchObject({
      status: 400,
      code: 'RoleAssignmentLimitExceeded',
      message: 'No more role assignments can be created.',
    });
    // Updating one that exists is not a new one.
    expect(
      store.checkPut(
        CONTAINER,
        names[0]!,
        props(ROLE_IDS.storageBlobDataReader, { principalId: `0${PRINCIPAL.slice(1)}` }),
        limited,
      ),
    ).toBeUndefined();
    expect(initialSettings({} as EmulatorConfig).roleAssignmentsPerSubscription).toBe(4000);
  });

  it('parse the body the SDK sends and refuse a body without properties', () => {
    expect(
      parseRoleAssignmentBody({ properties: { roleDefinitionId: ROLE_IDS.reader, principalId: PRINCIPAL } }),
    ).toMatchObject({ roleDefinitionId: ROLE_IDS.reader, principalId: PRINCIPAL, principalType: undefined });
    expect(parseRoleAssignmentBody({})).toMatchObject({ status: 400 });
    expect(parseRoleAssignmentBody({ properties: { principalId: PRINCIPAL } })).toMatchObject({
      status: 400,
    });
  });
});

describe('effective assignments', () => {
  it('take effect after the propagation delay and keep working that long after removal', () => {
    const store = new RoleAssignmentStore();
    put(store, ACCOUNT, NAME, props(ROLE_IDS.storageBlobDataReader), 1000);
    const query = (now: number) => ({
      principalId: PRINCIPAL.toUpperCase(),
      action: BLOB_READ,
      kind: 'data' as const,
      scope: CONTAINER,
      now,
      propagationSeconds: 10,
    });
    expect(grantingAssignment(store, query(5000))).toBeUndefined();
    expect(grantingAssignment(store, query(11_000))?.name).toBe(NAME);
    store.delete(ACCOUNT, NAME, 20_000);
    expect(grantingAssignment(store, query(25_000))?.name).toBe(NAME);
    expect(grantingAssignment(store, query(30_000))).toBeUndefined();
    expect(grantingAssignment(store, { ...query(11_000), propagationSeconds: 0 })).toBeUndefined();
  });

  it('count seeded ones at once and forget them at once', () => {
    const store = new RoleAssignmentStore();
    store.put(ACCOUNT, NAME, props(ROLE_IDS.storageBlobDataReader), {
      now: 1000,
      createdBy: 'emulator',
      principalType: 'ServicePrincipal',
      seeded: true,
    });
    const q = {
      principalId: PRINCIPAL,
      action: BLOB_READ,
      kind: 'data' as const,
      scope: CONTAINER,
      propagationSeconds: 60,
    };
    expect(grantingAssignment(store, { ...q, now: 1000 })).toBeDefined();
    store.delete(ACCOUNT, NAME, 2000);
    expect(grantingAssignment(store, { ...q, now: 2001 })).toBeUndefined();
  });

  it('grant only at or below the assignment, only the role’s actions, only with the condition fulfilled', () => {
    const store = new RoleAssignmentStore();
    put(store, CONTAINER, NAME, props(ROLE_IDS.storageBlobDataReader));
    const q = { principalId: PRINCIPAL, kind: 'data' as const, now: 0, propagationSeconds: 0 };
    expect(grantingAssignment(store, { ...q, action: BLOB_READ, scope: ACCOUNT })).toBeUndefined();
    expect(
      grantingAssignment(store, {
        ...q,
        action: BLOB_READ,
        scope: `${ACCOUNT}/blobServices/default/containers/other`,
      }),
    ).toBeUndefined();
    expect(grantingAssignment(store, { ...q, action: BLOB_WRITE, scope: CONTAINER })).toBeUndefined();
    expect(
      grantingAssignment(store, { ...q, action: BLOB_READ, scope: CONTAINER, principalId: NAME }),
    ).toBeUndefined();

    const admin = '44444444-4444-4444-8444-444444444444';
    const condition =
      "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR " +
      `(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${ROLE_IDS.storageBlobDataReader}}))`;
    put(
      store,
      RG,
      admin,
      props(ROLE_IDS.roleBasedAccessControlAdministrator, {
        principalId: admin,
        condition,
        conditionVersion: '2.0',
      }),
    );
    const write = {
      principalId: admin,
      action: RA_WRITE,
      kind: 'control' as const,
      scope: CONTAINER,
      now: 0,
      propagationSeconds: 0,
    };
    expect(
      grantingAssignment(store, { ...write, roleDefinitionGuid: ROLE_IDS.storageBlobDataReader }),
    ).toBeDefined();
    expect(grantingAssignment(store, { ...write, roleDefinitionGuid: ROLE_IDS.owner })).toBeUndefined();
    expect(
      grantingAssignment(store, {
        ...write,
        scope: `/subscriptions/${SUB}`,
        roleDefinitionGuid: ROLE_IDS.storageBlobDataReader,
      }),
    ).toBeUndefined();
  });
});

describe('list at scope', () => {
  const store = new RoleAssignmentStore();
  const other = '55555555-5555-4555-8555-555555555555';
  put(store, RG, '66666666-6666-4666-8666-666666666666', props(ROLE_IDS.reader));
  put(store, CONTAINER, NAME, props(ROLE_IDS.storageBlobDataReader));
  put(
    store,
    CONTAINER,
    '77777777-7777-4777-8777-777777777777',
    props(ROLE_IDS.storageBlobDataReader, { principalId: other }),
  );
  const names = (filter: string | undefined, scope = ACCOUNT) =>
    listAtScope(store, scope, parseListFilter(filter)!)
      .map((a) => `${a.role.roleName}@${a.scope === RG ? 'rg' : 'container'}/${a.principalId.slice(0, 1)}`)
      .sort();

  it('returns at, above and below without a filter; at or above with atScope()', () => {
    expect(names(undefined)).toEqual([
      'Reader@rg/1',
      'Storage Blob Data Reader@container/1',
      'Storage Blob Data Reader@container/5',
    ]);
    expect(names('atScope()')).toEqual(['Reader@rg/1']);
  });

  it("filters by principal with principalId eq '…' or assignedTo('…'), alone or with atScope()", () => {
    expect(names(`principalId eq '${other}'`)).toEqual(['Storage Blob Data Reader@container/5']);
    expect(names(`assignedTo('${PRINCIPAL}')`)).toEqual([
      'Reader@rg/1',
      'Storage Blob Data Reader@container/1',
    ]);
    expect(names(`atScope() and principalId eq '${PRINCIPAL}'`, CONTAINER)).toEqual([
      'Reader@rg/1',
      'Storage Blob Data Reader@container/1',
    ]);
    expect(parseListFilter("roleDefinitionId eq 'x'")).toBeUndefined();
  });
});

describe("ARM's request limits for Microsoft.Authorization", () => {
  it('are on by default, 250/25 reads and 200/10 writes and deletes, and can be lifted', () => {
    const settings = initialSettings({} as EmulatorConfig);
    expect(settings.authorizationRateLimits).toEqual(ARM_REQUEST_LIMITS);
    expect(ARM_REQUEST_LIMITS).toEqual({
      reads: { bucketSize: 250, refillPerSecond: 25 },
      writes: { bucketSize: 200, refillPerSecond: 10 },
      deletes: { bucketSize: 200, refillPerSecond: 10 },
    });
    expect(settings.principalReplicationSeconds).toBe(30);
    expect(settings.principalReplicationSecondsWithType).toBe(0);
    expect(settings.roleAssignmentPropagationSeconds).toBe(0);
    applySettingsPatch(settings, { authorizationRateLimits: {}, roleAssignmentPropagationSeconds: 5 });
    expect(settings.authorizationRateLimits).toEqual({});
    expect(settings.roleAssignmentPropagationSeconds).toBe(5);
    expect(() =>
      applySettingsPatch(settings, { authorizationRateLimits: { writes: { bucketSize: 0 } } }),
    ).toThrow(/bucketSize|refillPerSecond/);
  });

  it('empty a bucket per caller, refill it continuously, and cap all callers at 15 times one', () => {
    const throttle = new ArmRequestThrottle();
    const limits = { writes: { bucketSize: 2, refillPerSecond: 1 } };
    const keys = { subscription: SUB, principal: PRINCIPAL };
    expect(throttle.take('writes', limits, keys, 0).allowed).toBe(true);
    expect(throttle.take('writes', limits, keys, 0).allowed).toBe(true);
    expect(throttle.take('writes', limits, keys, 0)).toEqual({
      allowed: false,
      retryAfterSeconds: 1,
      by: 'writes/perPrincipal',
    });
    expect(throttle.take('writes', limits, keys, 1000).allowed).toBe(true);
    expect(throttle.take('reads', limits, keys, 1000).allowed).toBe(true);
    // 15 callers of 2 each empty the global bucket of 30; the 16th is refused by it.
    for (let i = 0; i < 15; i++)
      for (let j = 0; j < 2; j++)
        throttle.take('writes', limits, { subscription: 'other', principal: `p${i}` }, 0);
    expect(throttle.take('writes', limits, { subscription: 'other', principal: 'p15' }, 0)).toMatchObject({
      allowed: false,
      by: 'writes/global',
    });
  });
});
