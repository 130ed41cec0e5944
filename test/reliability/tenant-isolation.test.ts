// Tenant isolation (issue 8, item 3), against the real apiserver with RBAC on. Tenant A is a real
// user: a ServiceAccount token bound by a RoleBinding in namespace A to the built-in `edit`
// ClusterRole, which picks up entra-access's aggregate-to-edit rules. With its own kubeconfig it
// tries every way out of its namespace the API offers, and each attempt must be refused (403 by
// RBAC, 422 by the CRD schema, or a condition from the controller's guards) and have no effect on
// Azure (no FIC written: the emulator's identities and write counters) or on PostgreSQL (catalog
// snapshot unchanged: roles, memberships, Entra principals, privileges). Checks use the admin.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACCESS_PLURAL,
  ALLOWED_IDENTITIES_ANNOTATION,
  GROUP,
  SERVER_PLURAL,
  VERSION,
  WI_CLIENT_ID_ANNOTATION,
} from '../../src/api/constants.ts';
import { statusOf } from '../../src/kube/client.ts';
import {
  AzureEmulatorClient,
  type IdentityView,
  type IdentityWithFics,
} from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { API, mergePatch } from '../harness/kube.ts';
import { type ManagedProcess, makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  type AccessOptions,
  appToken,
  conditionOf,
  createAccess,
  createAppDatabase,
  createDatabaseServer,
  createOptedInNamespace,
  deleteAccessesAndWait,
  isReady,
  loginAndQuery,
  patchAccess,
  readAccess,
  startControllerProcess,
  superuserQuery,
} from '../harness/scenario.ts';
import {
  ARM_SCOPE,
  POSTGRES_SCOPE,
  serviceAccountToken,
  workloadIdentityCredential,
} from '../harness/workload-identity.ts';

const harness = harnessInfo();
const SUBSCRIPTION = '00000000-0000-0000-0000-00000000c0de';
const OTHER_SUBSCRIPTION = '00000000-0000-0000-0000-00000000c0df';

/** The EntraDatabaseAccess rules a chart's aggregate-to-edit/admin ClusterRole gives app teams. */
const EDIT_RULES: k8s.V1PolicyRule[] = [
  {
    apiGroups: [GROUP],
    resources: [ACCESS_PLURAL],
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
  },
];
const VIEW_RULES: k8s.V1PolicyRule[] = [
  { apiGroups: [GROUP], resources: [ACCESS_PLURAL], verbs: ['get', 'list', 'watch'] },
];

/** The HTTP status of a refused call, or 'accepted' when the call went through. */
async function outcome(call: () => Promise<unknown>): Promise<number | 'accepted'> {
  try {
    await call();
    return 'accepted';
  } catch (error) {
    const status = statusOf(error);
    if (status === undefined) throw error;
    return status;
  }
}

interface CatalogSnapshot {
  roles: unknown[];
  memberships: unknown[];
  principals: unknown[];
  privileges: unknown[];
}

describe.skipIf(!harness)('tenant isolation: a tenant with edit rights in its namespace only', () => {
  const run = uniqueName('iso');
  const nsA = `${run}-a`;
  const nsB = `${run}-b`;
  const rgA = `${run}-rg-a`;
  const rgB = `${run}-rg-b`;
  const srvA = `${run}-shared`; // allows A and B
  const srvB = `${run}-only-b`; // allows B only
  const srvAlias = `${run}-alias`; // same PostgreSQL, a second object allowing A only
  // A platform team's mistake: a server object whose allowedMemberOf lists admin and login roles.
  const srvLax = `${run}-lax`;
  const dbShared = `${run.replace(/-/g, '_')}_shared`;
  const dbB = `${run.replace(/-/g, '_')}_b`;
  const readers = `${run.replace(/-/g, '_')}_readers`; // allowed group role
  const vault = `${run.replace(/-/g, '_')}_vault`; // group role no server allows
  const roleA = `${run}-app-a`;
  const roleB = `${run}-app-b`;
  const adminRole = harness?.azure.operator.postgresAdminRole ?? '';
  const clusterRoleNames = [`${run}-access-edit`, `${run}-access-view`, `${run}-tenant-edit`];

  let admin: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let rbac: k8s.RbacAuthorizationV1Api;
  let tenant: k8s.KubeConfig;
  let tenantCore: k8s.CoreV1Api;
  let tenantCustom: k8s.CustomObjectsApi;
  let emulator: AzureEmulatorClient;
  let idA: IdentityView;
  let idA2: IdentityView; // in A's resource group: covered by A's `/*` prefix
  let idB: IdentityView;
  let idNearA: IdentityView; // resource group `${rgA}x`: shares A's prefix as a string only
  let idOtherSub: IdentityView; // same resource group name as A's, another subscription
  let dir: string;
  let controller: ManagedProcess | undefined;
  let editRoleUsed = '';

  const identityIds = () => [idA, idA2, idB, idNearA, idOtherSub].map((i) => i.id.toLowerCase());

  async function ficsOf(): Promise<IdentityWithFics[]> {
    const ids = new Set(identityIds());
    return (await emulator.listIdentities())
      .filter((i) => ids.has(i.id.toLowerCase()))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * What the attacks could change in PostgreSQL, limited to this file's world (the controller also
   * reconciles other files' leftovers, which must not make this flaky): the Entra principals of this
   * file's identities and their roles, the roles worth stealing (admin, azure_pg_admin, the groups,
   * both tenants' roles), every membership touching those, and every privilege in the shared database.
   */
  async function catalog(): Promise<CatalogSnapshot> {
    const principalIds = [idA, idA2, idB, idNearA, idOtherSub].map((i) => i.principalId);
    const principals = await superuserQuery<{ rolname: string }>(
      harness!,
      'SELECT rolname, object_id FROM pgaadauth_standin.principals WHERE object_id = ANY($1) ORDER BY 1, 2',
      [principalIds],
    );
    const watched = [
      ...new Set([
        ...principals.map((p) => p.rolname),
        roleA,
        roleB,
        readers,
        vault,
        adminRole,
        'azure_pg_admin',
        'pg_read_all_data',
      ]),
    ];
    const roles = await superuserQuery(
      harness!,
      `SELECT rolname, rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolbypassrls, rolinherit
         FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`,
      [watched],
    );
    const memberships = await superuserQuery(
      harness!,
      `SELECT g.rolname AS "group", m.rolname AS member, am.admin_option
         FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
        WHERE g.rolname = ANY($1) OR m.rolname = ANY($1)
        ORDER BY 1, 2`,
      [watched],
    );
    const privileges = await superuserQuery(
      harness!,
      `SELECT 'database' AS kind, datname::text AS name, datacl::text AS acl FROM pg_database
        WHERE datname = current_database()
        UNION ALL
       SELECT 'relation', c.oid::regclass::text, c.relacl::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
        UNION ALL
       SELECT 'schema', nspname::text, nspacl::text FROM pg_namespace
        ORDER BY 1, 2`,
      [],
      dbShared,
    );
    return { roles, memberships, principals, privileges };
  }

  /** The tenant's attempt, through the tenant's own kubeconfig. */
  const tenantCreates = (name: string, options: AccessOptions) =>
    createAccess(tenantCustom, nsA, name, options);

  const waitForCondition = (name: string, timeoutMs = 30_000) =>
    pollUntil(
      () => readAccess(custom, nsA, name),
      (a) =>
        conditionOf(a)?.status === 'False' &&
        conditionOf(a)?.observedGeneration === a?.metadata?.generation &&
        conditionOf(a)?.reason !== undefined,
      timeoutMs,
      150,
    );

  const waitForReady = (namespace: string, name: string) =>
    pollUntil(() => readAccess(custom, namespace, name), isReady, 60_000, 200);

  /** `edit`, as kube-controller-manager's aggregation controller would fill it in. */
  async function aggregatedEditRole(): Promise<string> {
    const edit = await rbac.readClusterRole({ name: 'edit' });
    const aggregated = (edit.rules ?? []).some((r) => r.apiGroups?.includes(GROUP));
    if (aggregated) return 'edit';
    // envtest runs no kube-controller-manager, so nothing aggregates `edit`: do what its
    // clusterrole-aggregation controller does, the union of the rules of every ClusterRole its
    // aggregationRule selects, into a ClusterRole the tenant is bound to instead.
    const rules: k8s.V1PolicyRule[] = [];
    for (const selector of edit.aggregationRule?.clusterRoleSelectors ?? []) {
      const labelSelector = Object.entries(selector.matchLabels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      for (const role of (await rbac.listClusterRole({ labelSelector })).items)
        rules.push(...(role.rules ?? []));
    }
    const name = `${run}-tenant-edit`;
    await rbac.createClusterRole({ body: { metadata: { name }, rules } });
    return name;
  }

  beforeAll(async () => {
    admin = adminKubeConfig(harness!);
    core = admin.makeApiClient(k8s.CoreV1Api);
    custom = admin.makeApiClient(k8s.CustomObjectsApi);
    rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
    emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
    dir = makeTempDir('tenant-isolation');

    idA = await emulator.createIdentity({ subscriptionId: SUBSCRIPTION, resourceGroup: rgA, name: 'app-a' });
    idA2 = await emulator.createIdentity({
      subscriptionId: SUBSCRIPTION,
      resourceGroup: rgA,
      name: 'app-a2',
    });
    idB = await emulator.createIdentity({ subscriptionId: SUBSCRIPTION, resourceGroup: rgB, name: 'app-b' });
    idNearA = await emulator.createIdentity({
      subscriptionId: SUBSCRIPTION,
      resourceGroup: `${rgA}x`,
      name: 'app-a',
    });
    idOtherSub = await emulator.createIdentity({
      subscriptionId: OTHER_SUBSCRIPTION,
      resourceGroup: rgA,
      name: 'app-a',
    });

    // The platform team's set-up: A may use anything in its resource group, B its one identity.
    await createOptedInNamespace(core, nsA, `/subscriptions/${SUBSCRIPTION}/resourceGroups/${rgA}/*`);
    await createOptedInNamespace(core, nsB, idB.id);
    await createAppDatabase(
      harness!,
      dbShared,
      'CREATE TABLE orders (id int); CREATE TABLE secrets (v text);',
    );
    await superuserQuery(harness!, `CREATE ROLE "${readers}" NOLOGIN; CREATE ROLE "${vault}" NOLOGIN`);
    await superuserQuery(harness!, `GRANT "${readers}" TO "${adminRole}" WITH ADMIN OPTION`);
    await createDatabaseServer(harness!, admin, {
      name: srvA,
      namespaces: [nsA, nsB],
      databases: [dbShared],
      memberOf: [readers],
    });
    await createDatabaseServer(harness!, admin, { name: srvB, namespaces: [nsB], databases: [dbB] });
    await createDatabaseServer(harness!, admin, { name: srvAlias, namespaces: [nsA], databases: [dbShared] });
    await createDatabaseServer(harness!, admin, {
      name: srvLax,
      namespaces: [nsA],
      databases: [dbShared],
      memberOf: [readers, 'azure_pg_admin', adminRole, roleB],
    });

    // entra-access's aggregated roles, as a chart ships them for app teams (not the /status
    // subresource: the controller trusts status), and the tenant: edit in A, nothing else.
    await rbac.createClusterRole({
      body: {
        metadata: {
          name: `${run}-access-edit`,
          labels: {
            'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
            'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
          },
        },
        rules: EDIT_RULES,
      },
    });
    await rbac.createClusterRole({
      body: {
        metadata: {
          name: `${run}-access-view`,
          labels: { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' },
        },
        rules: VIEW_RULES,
      },
    });
    editRoleUsed = await aggregatedEditRole();
    await core.createNamespacedServiceAccount({ namespace: nsA, body: { metadata: { name: 'tenant' } } });
    await rbac.createNamespacedRoleBinding({
      namespace: nsA,
      body: {
        metadata: { name: 'tenant-edit' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: editRoleUsed },
        subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: nsA }],
      },
    });
    const tenantToken = await serviceAccountToken(admin, nsA, 'tenant', harness!.kubernetes.issuer);
    tenant = new k8s.KubeConfig();
    tenant.loadFromOptions({
      clusters: [
        {
          name: 'harness',
          server: harness!.kubernetes.url,
          caData: Buffer.from(readFileSync(harness!.caFile)).toString('base64'),
          skipTLSVerify: false,
        },
      ],
      users: [{ name: 'tenant-a', token: tenantToken }],
      contexts: [{ name: 'tenant-a', cluster: 'harness', user: 'tenant-a' }],
      currentContext: 'tenant-a',
    });
    tenantCore = tenant.makeApiClient(k8s.CoreV1Api);
    tenantCustom = tenant.makeApiClient(k8s.CustomObjectsApi);

    controller = await startControllerProcess(harness!, admin, { dir, clusterName: run });

    // B's legitimate access (by B's admin), and A's own legitimate one (by the tenant).
    await createAccess(custom, nsB, 'app-b', {
      serviceAccountName: 'sa-b',
      identity: idB.id,
      serverRef: srvA,
      database: dbShared,
      roleName: roleB,
      memberOf: [readers],
    });
    await tenantCreates('app-a', {
      serviceAccountName: 'sa-a',
      identity: idA.id,
      serverRef: srvA,
      database: dbShared,
      roleName: roleA,
      memberOf: [readers],
    });
  });

  afterAll(async () => {
    if (!admin) return;
    // The controller runs the finalizers (Delete policy: roles dropped, FICs deleted).
    for (const namespace of [nsA, nsB]) await deleteAccessesAndWait(custom, namespace, 60_000);
    await controller?.stop();
    for (const name of [srvA, srvB, srvAlias, srvLax]) {
      await custom.deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name }).catch(() => {});
      await core
        .deleteNamespacedSecret({ namespace: harness!.azure.operator.namespace, name: `${name}-ca` })
        .catch(() => {});
    }
    for (const name of clusterRoleNames) await rbac.deleteClusterRole({ name }).catch(() => {});
    for (const name of [nsA, nsB]) await core.deleteNamespace({ name }).catch(() => {});
    await superuserQuery(harness!, `DROP DATABASE IF EXISTS "${dbShared}" WITH (FORCE)`).catch(() => {});
    for (const role of [roleA, roleB, readers, vault]) {
      await superuserQuery(harness!, `DROP ROLE IF EXISTS "${role}"`).catch(() => {});
    }
    for (const identity of [idA, idA2, idB, idNearA, idOtherSub]) {
      if (identity) await emulator.deleteIdentity(identity.id).catch(() => {});
    }
    if (dir) removeTempDir(dir);
  });

  it('the tenant can do its own job: its access in A becomes Ready and both apps log in', async () => {
    const a = await waitForReady(nsA, 'app-a');
    expect(isReady(a), JSON.stringify(a?.status)).toBe(true);
    const b = await waitForReady(nsB, 'app-b');
    expect(isReady(b), JSON.stringify(b?.status)).toBe(true);
    for (const [namespace, sa, id, role] of [
      [nsA, 'sa-a', idA, roleA],
      [nsB, 'sa-b', idB, roleB],
    ] as const) {
      const token = await appToken(harness!, admin, { namespace, serviceAccount: sa, clientId: id.clientId });
      expect(
        await loginAndQuery(harness!, { database: dbShared, role, token }, 'SELECT current_user AS u'),
      ).toBe(JSON.stringify([{ u: role }]));
    }
  });

  it('RBAC: the tenant may not touch servers, namespaces, other namespaces or status (403)', async () => {
    const tenantRbac = tenant.makeApiClient(k8s.RbacAuthorizationV1Api);
    const attempts: Record<string, () => Promise<unknown>> = {
      'create an EntraDatabaseServer allowing A everywhere': () =>
        tenantCustom.createClusterCustomObject({
          ...API,
          plural: SERVER_PLURAL,
          body: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'EntraDatabaseServer',
            metadata: { name: `${run}-evil` },
            spec: {
              host: 'localhost',
              adminRole,
              allowedNamespaces: { names: [nsA] },
              allowedDatabases: ['*'],
              allowedMemberOf: ['azure_pg_admin'],
            },
          },
        }),
      "add A to the B-only server's allowedNamespaces": () =>
        tenantCustom.patchClusterCustomObject(
          {
            ...API,
            plural: SERVER_PLURAL,
            name: srvB,
            body: { spec: { allowedNamespaces: { names: [nsA, nsB] } } },
          },
          mergePatch,
        ),
      "add memberOf azure_pg_admin to the shared server's allowedMemberOf": () =>
        tenantCustom.patchClusterCustomObject(
          {
            ...API,
            plural: SERVER_PLURAL,
            name: srvA,
            body: { spec: { allowedMemberOf: ['azure_pg_admin'] } },
          },
          mergePatch,
        ),
      "add B's identity to A's allow-list annotation": () =>
        tenantCore.patchNamespace(
          { name: nsA, body: { metadata: { annotations: { [ALLOWED_IDENTITIES_ANNOTATION]: idB.id } } } },
          mergePatch,
        ),
      "widen B's allow-list to A's resource group": () =>
        tenantCore.patchNamespace(
          { name: nsB, body: { metadata: { annotations: { [ALLOWED_IDENTITIES_ANNOTATION]: idA.id } } } },
          mergePatch,
        ),
      'create an EntraDatabaseAccess in B': () =>
        createAccess(tenantCustom, nsB, 'intruder', {
          serviceAccountName: 'sa-b',
          identity: idB.id,
          serverRef: srvA,
          database: dbShared,
        }),
      "edit B's EntraDatabaseAccess": () => patchAccess(tenantCustom, nsB, 'app-b', { memberOf: [] }),
      "write the status of its own access (the controller's record of what to clean up)": () =>
        tenantCustom.patchNamespacedCustomObjectStatus(
          {
            ...API,
            plural: ACCESS_PLURAL,
            namespace: nsA,
            name: 'app-a',
            body: {
              status: {
                applied: { server: srvA, role: roleB },
                identity: { resourceId: idB.id },
                federatedCredential: { name: 'x' },
              },
            },
          },
          mergePatch,
        ),
      "annotate B's service account with A's client-id": () =>
        tenantCore.patchNamespacedServiceAccount(
          {
            namespace: nsB,
            name: 'sa-b',
            body: { metadata: { annotations: { [WI_CLIENT_ID_ANNOTATION]: idA.clientId } } },
          },
          mergePatch,
        ),
      "request a token for B's service account": () => serviceAccountToken(tenant, nsB, 'sa-b'),
      "read the servers' CA Secret in the operator's namespace": () =>
        tenantCore.readNamespacedSecret({ namespace: harness!.azure.operator.namespace, name: `${srvA}-ca` }),
      'bind itself to admin in A': () =>
        tenantRbac.createNamespacedRoleBinding({
          namespace: nsA,
          body: {
            metadata: { name: 'escalate' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
            subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: nsA }],
          },
        }),
    };
    const results: Record<string, number | 'accepted'> = {};
    for (const [what, call] of Object.entries(attempts)) results[what] = await outcome(call);
    expect(results).toEqual(Object.fromEntries(Object.keys(attempts).map((what) => [what, 403])));
    // The status write really did nothing.
    const mine = await readAccess(custom, nsA, 'app-a');
    expect(mine?.status?.applied?.role).toBe(roleA);
    expect(mine?.status?.identity?.resourceId).toBe(idA.id);
  });

  it('the CRD refuses service accounts of another namespace and reserved names (422)', async () => {
    const base = { identity: idA.id, serverRef: srvA, database: dbShared };
    const attempts: Record<string, [string, AccessOptions]> = {
      'serviceAccountName B/sa-b': ['sa-slash', { ...base, serviceAccountName: `${nsB}/sa-b` }],
      'serviceAccountName B:sa-b': ['sa-colon', { ...base, serviceAccountName: `${nsB}:sa-b` }],
      'serviceAccountName as a FIC subject': [
        'sa-subject',
        { ...base, serviceAccountName: `system:serviceaccount:${nsB}:sa-b` },
      ],
      'serviceAccountName ../B/sa-b': ['sa-dots', { ...base, serviceAccountName: `../${nsB}/sa-b` }],
      'roleName postgres': ['r-postgres', { ...base, serviceAccountName: 'x', roleName: 'postgres' }],
      'roleName Postgres': ['r-postgres2', { ...base, serviceAccountName: 'x', roleName: 'Postgres' }],
      'roleName pg_read_all_data': [
        'r-pg',
        { ...base, serviceAccountName: 'x', roleName: 'pg_read_all_data' },
      ],
      'roleName PG_MONITOR': ['r-pg2', { ...base, serviceAccountName: 'x', roleName: 'PG_MONITOR' }],
      'roleName azure_pg_admin': [
        'r-azure',
        { ...base, serviceAccountName: 'x', roleName: 'azure_pg_admin' },
      ],
      'roleName azuresu': ['r-azuresu', { ...base, serviceAccountName: 'x', roleName: 'azuresu' }],
      'roleName with a quote': ['r-quote', { ...base, serviceAccountName: 'x', roleName: `${roleB}"--` }],
      'memberOf with a quote': [
        'm-quote',
        { ...base, serviceAccountName: 'x', memberOf: ['azure_pg_admin" --'] },
      ],
      "an identity ID climbing out of A's resource group": [
        'id-dots',
        {
          ...base,
          serviceAccountName: 'x',
          identity: `/subscriptions/${SUBSCRIPTION}/resourceGroups/${rgA}/../${rgB}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-b`,
        },
      ],
    };
    const results: Record<string, number | 'accepted'> = {};
    for (const [what, [name, options]] of Object.entries(attempts)) {
      results[what] = await outcome(() => tenantCreates(name, options));
    }
    // metadata.name is the role name when spec.roleName is omitted.
    results['metadata.name postgres, no roleName'] = await outcome(() =>
      tenantCreates('postgres', { ...base, serviceAccountName: 'x' }),
    );
    results['metadata.name pg_signal_backend, no roleName'] = await outcome(() =>
      tenantCreates('pg_signal_backend', { ...base, serviceAccountName: 'x' }),
    );
    expect(results).toEqual(Object.fromEntries(Object.keys(results).map((what) => [what, 422])));

    // A namespace field in the spec is not part of the schema: pruned, the FIC subject stays A's.
    await tenantCustom.createNamespacedCustomObject({
      ...API,
      plural: ACCESS_PLURAL,
      namespace: nsA,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'EntraDatabaseAccess',
        metadata: { name: 'sa-namespace-field' },
        spec: {
          serviceAccountName: 'sa-b',
          serviceAccountNamespace: nsB,
          namespace: nsB,
          identity: { resourceId: idB.id, namespace: nsB },
          serverRef: srvA,
          database: dbShared,
        },
      },
    });
    const stored = (await readAccess(custom, nsA, 'sa-namespace-field')) as unknown as {
      spec: Record<string, unknown>;
    };
    expect(stored.spec).not.toHaveProperty('serviceAccountNamespace');
    expect(stored.spec).not.toHaveProperty('namespace');
    expect(stored.spec.identity).toEqual({ resourceId: idB.id });
    // ... and B's identity is still refused for it (the guard below covers it).
    expect(conditionOf(await waitForCondition('sa-namespace-field'))?.reason).toBe('IdentityNotAllowed');
  });

  it("the controller's guards refuse every cross-tenant request and write nothing to Azure or PostgreSQL", async () => {
    const fics = await ficsOf();
    const before = await catalog();
    const base = { serviceAccountName: 'sa-a', identity: idA.id, serverRef: srvA, database: dbShared };
    const attempts: Array<{ what: string; name: string; options: AccessOptions; reason: string }> = [
      {
        what: "bind B's identity",
        name: 'id-b',
        options: { ...base, identity: idB.id },
        reason: 'IdentityNotAllowed',
      },
      {
        what: "bind B's identity, ID in upper case",
        name: 'id-b-upper',
        options: { ...base, identity: idB.id.toUpperCase() },
        reason: 'IdentityNotAllowed',
      },
      {
        what: "bind an identity in a resource group whose name only starts like A's",
        name: 'id-near',
        options: { ...base, identity: idNearA.id },
        reason: 'IdentityNotAllowed',
      },
      {
        what: "bind an identity in A's resource-group name of another subscription",
        name: 'id-other-sub',
        options: { ...base, identity: idOtherSub.id },
        reason: 'IdentityNotAllowed',
      },
      {
        what: 'use a server that does not allow A',
        name: 'srv-b',
        options: { ...base, serverRef: srvB, database: dbB },
        reason: 'ServerNotAllowed',
      },
      {
        what: 'use a database the server does not allow',
        name: 'db-b',
        options: { ...base, database: dbB },
        reason: 'DatabaseNotAllowed',
      },
      {
        what: 'join azure_pg_admin',
        name: 'm-azure',
        options: { ...base, memberOf: ['azure_pg_admin'] },
        reason: 'MemberOfNotAllowed',
      },
      {
        what: 'join a group role the server does not allow',
        name: 'm-vault',
        options: { ...base, memberOf: [readers, vault] },
        reason: 'MemberOfNotAllowed',
      },
      {
        what: "join B's login role",
        name: 'm-role-b',
        options: { ...base, memberOf: [roleB] },
        reason: 'MemberOfNotAllowed',
      },
      {
        what: "join the operator's admin role",
        name: 'm-admin',
        options: { ...base, memberOf: [adminRole] },
        reason: 'MemberOfNotAllowed',
      },
      {
        what: 'join pg_read_all_data',
        name: 'm-pg',
        options: { ...base, memberOf: ['pg_read_all_data'] },
        reason: 'MemberOfNotAllowed',
      },
      {
        what: "take the operator's admin role name",
        name: 'r-admin',
        options: { ...base, roleName: adminRole },
        reason: 'RoleNameReserved',
      },
      {
        what: 'take the admin role name in upper case',
        name: 'r-admin-case',
        options: { ...base, roleName: adminRole.toUpperCase() },
        reason: 'RoleNameReserved',
      },
      {
        what: "take B's role name on the same server",
        name: 'r-role-b',
        options: { ...base, roleName: roleB },
        reason: 'RoleNameInUse',
      },
      {
        what: "take B's role name in upper case",
        name: 'r-role-b-case',
        options: { ...base, roleName: roleB.toUpperCase() },
        reason: 'RoleNameInUse',
      },
      // Even where a server's allowedMemberOf lists them (guards.ts neverGrantable). A service
      // account of their own, so no other check refuses them first.
      {
        what: 'join azure_pg_admin, listed by the server',
        name: 'lax-azure',
        options: { ...base, serviceAccountName: 'sa-lax', serverRef: srvLax, memberOf: ['azure_pg_admin'] },
        reason: 'MemberOfNotAllowed',
      },
      {
        what: "join the operator's admin role, listed by the server",
        name: 'lax-admin',
        options: { ...base, serviceAccountName: 'sa-lax', serverRef: srvLax, memberOf: [adminRole] },
        reason: 'MemberOfNotAllowed',
      },
      {
        what: "join B's login role, listed by another server object for the same PostgreSQL",
        name: 'lax-role-b',
        options: { ...base, serviceAccountName: 'sa-lax', serverRef: srvLax, memberOf: [roleB] },
        reason: 'MemberOfNotAllowed',
      },
      // Giving its objects to a role on deletion (spec.ownedObjects) is held to memberOf's rules: a
      // SECURITY DEFINER function it made would then run as that role.
      {
        what: 'give its objects to a group role the server does not allow',
        name: 'o-vault',
        options: { ...base, ownedObjects: { policy: 'Reassign', reassignTo: vault } },
        reason: 'ReassignTargetNotAllowed',
      },
      {
        what: "give its objects to B's login role, listed by the server",
        name: 'lax-o-role-b',
        options: {
          ...base,
          serviceAccountName: 'sa-lax',
          serverRef: srvLax,
          ownedObjects: { policy: 'Reassign', reassignTo: roleB },
        },
        reason: 'ReassignTargetNotAllowed',
      },
      {
        what: "give its objects to the operator's admin role, listed by the server",
        name: 'lax-o-admin',
        options: {
          ...base,
          serviceAccountName: 'sa-lax',
          serverRef: srvLax,
          ownedObjects: { policy: 'Reassign', reassignTo: adminRole },
        },
        reason: 'ReassignTargetNotAllowed',
      },
    ];
    for (const { name, options } of attempts) await tenantCreates(name, options);
    const reasons: Record<string, string | undefined> = {};
    for (const { what, name } of attempts) reasons[what] = conditionOf(await waitForCondition(name))?.reason;
    expect(reasons).toEqual(Object.fromEntries(attempts.map(({ what, reason }) => [what, reason])));

    // Nothing reached Azure or the database.
    // (FICs compared whole, changedAt included: a rewrite would show. The emulator's write counter
    // is not used: it counts every identity, and this controller also reconciles other files' leftovers.)
    expect(await ficsOf()).toEqual(fics);
    expect(await catalog()).toEqual(before);
    // B still works.
    const token = await appToken(harness!, admin, {
      namespace: nsB,
      serviceAccount: 'sa-b',
      clientId: idB.clientId,
    });
    expect(await loginAndQuery(harness!, { database: dbShared, role: roleB, token }, 'SELECT 1 AS one')).toBe(
      JSON.stringify([{ one: 1 }]),
    );
  });

  it("past the guards, the database refuses another tenant's role and any existing role (RoleConflict)", async () => {
    const before = await catalog();
    const ficsB = (await ficsOf()).find((i) => i.id === idB.id)?.federatedIdentityCredentials;
    // Another EntraDatabaseServer object for the same PostgreSQL: the guard compares role names
    // per server object, so B's role name passes it; the database layer must still refuse.
    await tenantCreates('alias-role-b', {
      serviceAccountName: 'sa-alias',
      identity: idA2.id,
      serverRef: srvAlias,
      database: dbShared,
      roleName: roleB,
    });
    // A role that exists but is no Entra principal (a group): never taken over.
    await tenantCreates('take-vault', {
      serviceAccountName: 'sa-vault',
      identity: idA2.id,
      serverRef: srvA,
      database: dbShared,
      roleName: vault,
    });
    for (const name of ['alias-role-b', 'take-vault']) {
      const access = await pollUntil(
        () => readAccess(custom, nsA, name),
        (a) => conditionOf(a, 'DatabaseRoleReady')?.reason === 'RoleConflict',
        60_000,
        200,
      );
      expect(conditionOf(access, 'DatabaseRoleReady')?.reason, JSON.stringify(access?.status)).toBe(
        'RoleConflict',
      );
      expect(isReady(access)).toBe(false);
    }
    expect(await catalog()).toEqual(before);
    expect((await ficsOf()).find((i) => i.id === idB.id)?.federatedIdentityCredentials).toEqual(ficsB);
    // A's identity may not log in as B's role either (the token is A2's, the role maps to B).
    const token = await appToken(harness!, admin, {
      namespace: nsA,
      serviceAccount: 'sa-alias',
      clientId: idA2.clientId,
    });
    expect(await loginAndQuery(harness!, { database: dbShared, role: roleB, token }, 'SELECT 1')).toMatch(
      /^ERROR/,
    );
  });

  it("annotating its own service account with B's client-id gets no token: B's FIC trusts only B's SA", async () => {
    const beforeFics = await ficsOf();
    const counters = await emulator.counters();
    // The tenant itself: an SA in A claiming B's identity, and a real TokenRequest for it.
    await tenantCore.createNamespacedServiceAccount({
      namespace: nsA,
      body: { metadata: { name: 'thief', annotations: { [WI_CLIENT_ID_ANNOTATION]: idB.clientId } } },
    });
    await tenantCore.patchNamespacedServiceAccount(
      {
        namespace: nsA,
        name: 'sa-a',
        body: { metadata: { annotations: { [WI_CLIENT_ID_ANNOTATION]: idB.clientId } } },
      },
      mergePatch,
    );
    for (const sa of ['thief', 'sa-a']) {
      const jwt = await serviceAccountToken(tenant, nsA, sa);
      const credential = await workloadIdentityCredential(harness!, idB.clientId, jwt);
      await expect(credential.getToken(ARM_SCOPE)).rejects.toThrow(/AADSTS70021/);
      await expect(credential.getToken(POSTGRES_SCOPE)).rejects.toThrow(/AADSTS70021/);
    }
    // Give the controller time to react to the SA changes, then: no FIC for A's SAs on B's identity.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const identities = await ficsOf();
    const subjectsOfB = identities
      .find((i) => i.id === idB.id)
      ?.federatedIdentityCredentials.map((f) => f.properties.subject);
    expect(subjectsOfB).toEqual([`system:serviceaccount:${nsB}:sa-b`]);
    expect(identities).toEqual(beforeFics);
    const after = await emulator.counters();
    // Two service accounts, two scopes: every exchange refused (MSAL may retry, never succeed).
    expect(
      (after.token.byOutcome.AADSTS70021 ?? 0) - (counters.token.byOutcome.AADSTS70021 ?? 0),
    ).toBeGreaterThanOrEqual(4);
    // The controller leaves a client-id it did not set and says so, rather than overwrite it or follow it.
    const mine = await pollUntil(
      () => readAccess(custom, nsA, 'app-a'),
      (a) => conditionOf(a, 'ServiceAccountReady')?.status === 'False',
      30_000,
      200,
    );
    expect(conditionOf(mine, 'ServiceAccountReady')?.reason).toBe('ServiceAccountClientIdConflict');
  });

  it("an allow-list that covers the operator's own identity still never binds it", async () => {
    // A platform team's mistake: A's allow-list also covers the operator's identity (say, a
    // resource-group prefix that includes it). The controller refuses once the identity resolves.
    const operator = harness!.azure.operator;
    const operatorFics = async () =>
      (await emulator.listIdentities()).find((i) => i.id.toLowerCase() === operator.resourceId.toLowerCase())
        ?.federatedIdentityCredentials;
    const ficsBefore = await operatorFics();
    const catalogBefore = await catalog();
    const allowList = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${rgA}/*,${operator.resourceId}`;
    const annotate = (value: string) =>
      core.patchNamespace(
        { name: nsA, body: { metadata: { annotations: { 'entra-access.io/allowed-identities': value } } } },
        mergePatch,
      );
    const original = (await core.readNamespace({ name: nsA })).metadata?.annotations?.[
      'entra-access.io/allowed-identities'
    ];
    await annotate(allowList);
    try {
      await tenantCreates('id-operator', {
        serviceAccountName: 'sa-operator',
        identity: operator.resourceId,
        serverRef: srvA,
        database: dbShared,
      });
      const refused = conditionOf(await waitForCondition('id-operator'));
      expect(refused).toMatchObject({ reason: 'IdentityNotAllowed' });
      expect(refused?.message).toMatch(/entra-access's own identity/);
      expect(await operatorFics()).toEqual(ficsBefore);
      expect(await catalog()).toEqual(catalogBefore);
    } finally {
      await annotate(original ?? '');
    }
  });

  it('records which edit role the tenant had', () => {
    // `edit` itself with a kube-controller-manager; the same rules aggregated by the test without one.
    expect(['edit', `${run}-tenant-edit`]).toContain(editRoleUsed);
    console.info(`tenant A is bound to ClusterRole ${editRoleUsed}`);
  });
});
