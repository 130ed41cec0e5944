// The set-up every end-to-end scenario repeats, in one place: an app database owned by the
// operator's Entra admin role, opted-in namespaces, an EntraDatabaseServer, the operator's own
// projected token, the operator as a child process (`node src/main.ts run`, as the container runs
// it), access resources, and the app's side (TokenRequest -> @azure/identity -> pg login).
// Used by the reliability suite, the benchmarks and `make demo`; plain functions of the harness
// info, so they work inside vitest and in plain scripts alike.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { ACCESS_PLURAL, GROUP, SERVER_PLURAL, VERSION } from '../../src/api/constants.ts';
import type {
  Condition,
  EntraDatabaseAccess,
  EntraDatabaseAccessSpec,
  EntraDatabaseServer,
  Grant,
  OwnedObjects,
  SslMode,
  TablePrivilege,
} from '../../src/api/types.ts';
import { parseConfig } from '../../src/config.ts';
import { type ControllerComponent, createControllerComponent } from '../../src/controller/component.ts';
import { statusOf } from '../../src/kube/client.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { createMetrics, type Metrics } from '../../src/observability/metrics.ts';
import type { AzureEmulatorClient, FicView } from './azure-emulator/client.ts';
import type { HarnessInfo } from './harness.ts';
import { API, mergePatch } from './kube.ts';
import { pollUntil } from './poll.ts';
import { type ManagedProcess, startProcess } from './processes.ts';
import { POSTGRES_SCOPE, serviceAccountToken, workloadIdentityCredential } from './workload-identity.ts';

export { API };
export const MAIN_SCRIPT = new URL('../../src/main.ts', import.meta.url).pathname;

/** The harness superuser URL pointed at another database (direct, not through the Entra gateway). */
export const superuserUrl = (info: HarnessInfo, database = 'postgres'): string =>
  info.postgres.superuserUrl.replace(/\/postgres\?/, `/${database}?`);

/** Runs SQL as the harness superuser and returns the rows of the last statement. */
export async function superuserQuery<T extends pg.QueryResultRow = Record<string, unknown>>(
  info: HarnessInfo,
  sql: string,
  params: unknown[] = [],
  database = 'postgres',
): Promise<T[]> {
  const client = new pg.Client({ connectionString: superuserUrl(info, database) });
  await client.connect();
  try {
    const result: pg.QueryResult<T> | pg.QueryResult<T>[] = await client.query<T>(sql, params);
    return (Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows) as T[];
  } finally {
    await client.end();
  }
}

/**
 * Creates `database`, owned by the operator's Entra admin role as on Azure (the admin creates
 * the app's tables, so it may grant on them), then runs `setupSql` as that role inside it.
 */
export async function createAppDatabase(info: HarnessInfo, database: string, setupSql = ''): Promise<void> {
  const admin = info.azure.operator.postgresAdminRole;
  await superuserQuery(info, `CREATE DATABASE "${database}" OWNER "${admin}"`);
  if (setupSql) await superuserQuery(info, `SET ROLE "${admin}"; ${setupSql}`, [], database);
}

/** A namespace opted in to workload identity, allowed the identities matching `allowedIdentities`. */
export async function createOptedInNamespace(
  core: k8s.CoreV1Api,
  name: string,
  allowedIdentities: string,
  extraAnnotations: Record<string, string> = {},
): Promise<void> {
  await core.createNamespace({
    body: {
      metadata: {
        name,
        annotations: {
          'entra-access.io/workload-identity': 'enabled',
          'entra-access.io/allowed-identities': allowedIdentities,
          ...extraAnnotations,
        },
      },
    },
  });
}

export interface ServerOptions {
  name: string;
  namespaces: string[];
  databases: string[];
  memberOf?: string[];
  /** Default localhost, a name the gateway's certificate lists. */
  host?: string;
  /** Default verify-full. */
  sslMode?: SslMode;
  /** The CA bundle for the Secret; default the harness CA, which signed the gateway's certificate. */
  caPem?: string;
}

/**
 * An EntraDatabaseServer for the harness PostgreSQL (through the Entra gateway, TLS verify-full
 * against the harness CA, stored in a Secret in the operator's namespace), unless `options` say
 * otherwise.
 */
export async function createDatabaseServer(
  info: HarnessInfo,
  kubeConfig: k8s.KubeConfig,
  options: ServerOptions,
): Promise<void> {
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const secretName = `${options.name}-ca`;
  await core.createNamespacedSecret({
    namespace: info.azure.operator.namespace,
    body: {
      metadata: { name: secretName },
      stringData: { 'ca.crt': options.caPem ?? readFileSync(info.caFile, 'utf8') },
    },
  });
  await custom.createClusterCustomObject({
    ...API,
    plural: SERVER_PLURAL,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'EntraDatabaseServer',
      metadata: { name: options.name },
      spec: {
        host: options.host ?? 'localhost',
        port: info.postgres.port,
        sslMode: options.sslMode ?? 'verify-full',
        sslRootCertSecretRef: { name: secretName, namespace: info.azure.operator.namespace },
        adminRole: info.azure.operator.postgresAdminRole,
        allowedNamespaces: { names: options.namespaces },
        allowedDatabases: options.databases,
        allowedMemberOf: options.memberOf ?? [],
      },
    } satisfies Omit<EntraDatabaseServer, 'status'>,
  });
}

export interface AccessOptions {
  serviceAccountName: string;
  identity: string;
  serverRef: string;
  database: string;
  roleName?: string;
  memberOf?: string[];
  /** Default: CONNECT on the database; `null`: no spec.grants at all. */
  grants?: Grant[] | null;
  deletionPolicy?: 'Delete' | 'Orphan';
  ownedObjects?: OwnedObjects;
}

/** CONNECT on the database, USAGE on schema public and SELECT on `tables` in it: an app that reads them. */
export const readGrants = (...tables: string[]): Grant[] => [
  { target: 'database', privileges: ['CONNECT'] },
  { target: 'schema', schema: 'public', privileges: ['USAGE'] },
  ...(tables.length > 0
    ? [{ target: 'tables' as const, schema: 'public', tables, privileges: ['SELECT' as const] }]
    : []),
];

export async function createAccess(
  custom: k8s.CustomObjectsApi,
  namespace: string,
  name: string,
  options: AccessOptions,
): Promise<void> {
  const { identity, grants, ...rest } = options;
  await custom.createNamespacedCustomObject({
    ...API,
    plural: ACCESS_PLURAL,
    namespace,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'EntraDatabaseAccess',
      metadata: { name },
      spec: {
        ...rest,
        identity: { resourceId: identity },
        ...(grants === null ? {} : { grants: grants ?? [{ target: 'database', privileges: ['CONNECT'] }] }),
      },
    },
  });
}

export const readAccess = (
  custom: k8s.CustomObjectsApi,
  namespace: string,
  name: string,
): Promise<EntraDatabaseAccess | undefined> =>
  custom.getNamespacedCustomObject({ ...API, plural: ACCESS_PLURAL, namespace, name }).then(
    (o) => o as EntraDatabaseAccess,
    () => undefined,
  );

export const listAccesses = async (
  custom: k8s.CustomObjectsApi,
  namespace?: string,
): Promise<EntraDatabaseAccess[]> =>
  (
    (namespace
      ? await custom.listNamespacedCustomObject({ ...API, plural: ACCESS_PLURAL, namespace })
      : await custom.listClusterCustomObject({ ...API, plural: ACCESS_PLURAL })) as {
      items: EntraDatabaseAccess[];
    }
  ).items;

/** Changes an existing access resource's spec with a merge patch; the resource as patched. */
export const patchAccess = (
  custom: k8s.CustomObjectsApi,
  namespace: string,
  name: string,
  spec: Partial<EntraDatabaseAccessSpec>,
): Promise<EntraDatabaseAccess> =>
  custom.patchNamespacedCustomObject(
    { ...API, plural: ACCESS_PLURAL, namespace, name, body: { spec } },
    mergePatch,
  ) as Promise<EntraDatabaseAccess>;

/** A condition of an access resource or a server, by type (Ready unless told). */
export const conditionOf = (
  resource: { status?: { conditions?: Condition[] } } | undefined,
  type = 'Ready',
): Condition | undefined => resource?.status?.conditions?.find((c) => c.type === type);

/** Changes an existing EntraDatabaseServer's spec with a merge patch. */
export const patchServer = (
  custom: k8s.CustomObjectsApi,
  name: string,
  spec: Partial<EntraDatabaseServer['spec']>,
): Promise<EntraDatabaseServer> =>
  custom.patchClusterCustomObject(
    { ...API, plural: SERVER_PLURAL, name, body: { spec } },
    mergePatch,
  ) as Promise<EntraDatabaseServer>;

export const readServer = (custom: k8s.CustomObjectsApi, name: string): Promise<EntraDatabaseServer> =>
  custom.getClusterCustomObject({ ...API, plural: SERVER_PLURAL, name }) as Promise<EntraDatabaseServer>;

/**
 * Polls the EntraDatabaseServer until it is Ready=True or `timeoutMs` has passed, and returns it
 * as last read, for the caller's assertions.
 */
export const waitForServerReady = (
  custom: k8s.CustomObjectsApi,
  name: string,
  timeoutMs = 60_000,
): Promise<EntraDatabaseServer> =>
  pollUntil(
    () => readServer(custom, name),
    (server) => conditionOf(server)?.status === 'True',
    timeoutMs,
    200,
  );

/** The federated credentials on an identity of the Azure emulator; throws when there is no such identity. */
export async function ficsOf(emulator: AzureEmulatorClient, identityId: string): Promise<FicView[]> {
  const identity = (await emulator.listIdentities()).find(
    (i) => i.id.toLowerCase() === identityId.toLowerCase(),
  );
  if (!identity) throw new Error(`the Azure emulator has no identity ${identityId}`);
  return identity.federatedIdentityCredentials;
}

/** Ready=True for the resource's current generation. */
export const isReady = (access: EntraDatabaseAccess | undefined): boolean =>
  conditionOf(access)?.status === 'True' &&
  access?.status?.observedGeneration === access?.metadata?.generation;

/** Writes the operator's projected service-account token, as the AKS webhook would mount it. */
export async function writeOperatorToken(
  info: HarnessInfo,
  kubeConfig: k8s.KubeConfig,
  dir: string,
): Promise<string> {
  const tokenFile = join(dir, 'operator-token');
  const { namespace, serviceAccount } = info.azure.operator;
  await writeFile(tokenFile, await serviceAccountToken(kubeConfig, namespace, serviceAccount), {
    mode: 0o600,
  });
  return tokenFile;
}

/** The flags that point the operator at the harness's Azure emulator and apiserver issuer. */
export function operatorArgs(info: HarnessInfo, clusterName: string): string[] {
  return [
    `--authority-host=${info.azure.url}`,
    `--arm-endpoint=${info.azure.url}`,
    `--oidc-issuer-url=${info.kubernetes.issuer}`,
    `--namespace=${info.azure.operator.namespace}`,
    `--cluster-name=${clusterName}`,
  ];
}

/** The environment of the operator's pod: its workload identity, the harness CA, the kubeconfig. */
export function operatorEnv(info: HarnessInfo, tokenFile: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AZURE_CLIENT_ID: info.azure.operator.clientId,
    AZURE_TENANT_ID: info.azure.tenantId,
    AZURE_FEDERATED_TOKEN_FILE: tokenFile,
    NODE_EXTRA_CA_CERTS: info.caFile,
    KUBECONFIG: info.kubernetes.kubeconfigPath,
  };
}

export interface InProcessControllerOptions {
  tokenFile: string;
  clusterName: string;
  /** Extra flags after the harness ones, e.g. ['--resync-period=30']. */
  args?: string[];
  logger?: Logger;
  metrics?: Metrics;
  /** Options for the controller's Azure SDK clients, e.g. a pipeline policy recording requests. */
  azureClientOptions?: Record<string, unknown>;
}

/**
 * The controller role in the test's own process (no leader election), for tests that read its
 * in-memory stats or swap its logger; `startOperatorProcess` runs the real CLI instead.
 */
export async function startInProcessController(
  info: HarnessInfo,
  kubeConfig: k8s.KubeConfig,
  options: InProcessControllerOptions,
): Promise<ControllerComponent> {
  const config = parseConfig(
    [
      '--controller',
      `--kubeconfig=${info.kubernetes.kubeconfigPath}`,
      ...operatorArgs(info, options.clusterName),
      '--leader-elect=false',
      ...(options.args ?? []),
    ],
    {},
  );
  const controller = createControllerComponent(config, {
    kubeConfig,
    logger: options.logger ?? createLogger('warn'),
    metrics: options.metrics ?? createMetrics(),
    ...(options.azureClientOptions ? { azureClientOptions: options.azureClientOptions } : {}),
    azureEnv: {
      AZURE_CLIENT_ID: info.azure.operator.clientId,
      AZURE_TENANT_ID: info.azure.tenantId,
      AZURE_FEDERATED_TOKEN_FILE: options.tokenFile,
    },
  });
  await controller.start();
  return controller;
}

export interface OperatorProcessOptions {
  /** Process and log file name. */
  name: string;
  logDir: string;
  tokenFile: string;
  clusterName: string;
  /** Role and extra flags, e.g. ['--controller', '--leader-elect=false']. */
  args: string[];
  env?: NodeJS.ProcessEnv;
}

/** `node src/main.ts run …` as the container runs it, with the operator's workload identity. */
export function startOperatorProcess(
  info: HarnessInfo,
  options: OperatorProcessOptions,
): Promise<ManagedProcess> {
  return startProcess({
    name: options.name,
    command: process.execPath,
    args: [MAIN_SCRIPT, 'run', ...operatorArgs(info, options.clusterName), ...options.args],
    logDir: options.logDir,
    env: { ...operatorEnv(info, options.tokenFile), ...options.env },
    readyWhen: (output) => output.includes('starting entra-access'),
    timeoutMs: 30_000,
  });
}

/**
 * The controller alone as a process (`run --controller`), with the operator's token written to
 * `dir` (its log goes there too): no leader election, no metrics or health port.
 */
export async function startControllerProcess(
  info: HarnessInfo,
  kubeConfig: k8s.KubeConfig,
  options: { dir: string; clusterName: string },
): Promise<ManagedProcess> {
  return startOperatorProcess(info, {
    name: 'controller',
    logDir: options.dir,
    tokenFile: await writeOperatorToken(info, kubeConfig, options.dir),
    clusterName: options.clusterName,
    args: ['--controller', '--leader-elect=false', '--metrics-port=0', '--health-port=0'],
  });
}

export interface AppIdentity {
  namespace: string;
  serviceAccount: string;
  clientId: string;
}

/** A PostgreSQL token as the app's pod gets it: TokenRequest, then the real @azure/identity. */
export async function appToken(
  info: HarnessInfo,
  kubeConfig: k8s.KubeConfig,
  app: AppIdentity,
): Promise<string> {
  const jwt = await serviceAccountToken(kubeConfig, app.namespace, app.serviceAccount);
  const credential = await workloadIdentityCredential(info, app.clientId, jwt);
  const token = await credential.getToken(POSTGRES_SCOPE);
  if (!token) throw new Error(`no PostgreSQL token for ${app.namespace}/${app.serviceAccount}`);
  return token.token;
}

/**
 * Logs in through the Entra gateway as `role` with `token` as the password and runs `sql`:
 * the last statement's rows as JSON, or "ERROR: <message>" when the login or the query fails.
 */
export async function loginAndQuery(
  info: HarnessInfo,
  login: { database: string; role: string; token: string },
  sql: string,
): Promise<string> {
  const client = new pg.Client({
    host: info.postgres.host,
    port: info.postgres.port,
    database: login.database,
    user: login.role,
    password: login.token,
    ssl: { ca: readFileSync(info.caFile, 'utf8') },
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const result: pg.QueryResult | pg.QueryResult[] = await client.query(sql);
    return JSON.stringify((Array.isArray(result) ? result.at(-1) : result)?.rows);
  } catch (error) {
    return `ERROR: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => {});
  }
}

/** GRANT/REVOKE/CREATE/ALTER/DROP statements in the PostgreSQL statement log so far. */
export function ddlCount(info: HarnessInfo): number {
  const log = readFileSync(info.postgres.logFile ?? '', 'utf8');
  return log.split('\n').filter((line) => / LOG: {2}statement: (GRANT|REVOKE|CREATE|ALTER|DROP)/.test(line))
    .length;
}

/** Entra roles mapped to a principal (the pgaadauth stand-ins' record of security labels). */
export async function rolesOfPrincipal(info: HarnessInfo, principalId: string): Promise<string[]> {
  const rows = await superuserQuery<{ rolname: string }>(
    info,
    `SELECT p.rolname FROM pgaadauth_standin.principals p JOIN pg_roles r ON r.rolname = p.rolname
     WHERE p.object_id = $1 ORDER BY 1`,
    [principalId],
  );
  return rows.map((r) => r.rolname);
}

// ---------------------------------------------------------------------------------------------
// Fault matrix (test/reliability/faults-*.test.ts): a small fleet of access resources, and the one
// check of "converged" that every fault must end with.

/** The app tables every fleet database has; fleet grants name them. */
export const FLEET_TABLES = ['orders', 'items', 'invoices'] as const;
const FLEET_PRIVILEGES: readonly TablePrivilege[] = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];

export interface FleetIdentity {
  id: string;
  clientId: string;
  principalId: string;
}

/** One access resource of a fleet, and everything it should end up with. */
export interface FleetAccess {
  namespace: string;
  name: string;
  serviceAccount: string;
  identity: FleetIdentity;
  /** The role of the identity: every access of one identity names the same one. */
  role: string;
  /** Table privileges in schema public, by table. */
  tables: Partial<Record<(typeof FLEET_TABLES)[number], TablePrivilege[]>>;
}

export interface FleetWorld {
  run: string;
  database: string;
  server: string;
  namespaces: string[];
  identities: FleetIdentity[];
}

/**
 * A database with FLEET_TABLES, `namespaces` opted-in namespaces allowed every identity of a
 * subscription of the run's own, `identities` managed identities in it, and a server allowing all.
 */
export async function createFleetWorld(
  info: HarnessInfo,
  kubeConfig: k8s.KubeConfig,
  emulator: AzureEmulatorClient,
  options: { run: string; namespaces: number; identities: number },
): Promise<FleetWorld> {
  const { run } = options;
  const database = run.replaceAll('-', '_');
  const hex = Buffer.from(run).toString('hex').padEnd(12, '0').slice(-12);
  const subscriptionId = `00000000-0000-0000-0000-${hex}`;
  await createAppDatabase(
    info,
    database,
    FLEET_TABLES.map((table) => `CREATE TABLE ${table} (id int);`).join(' '),
  );
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const namespaces = Array.from({ length: options.namespaces }, (_, i) => `${run}-ns${i}`);
  for (const name of namespaces)
    await createOptedInNamespace(core, name, `/subscriptions/${subscriptionId}/*`);
  const identities: FleetIdentity[] = [];
  for (let i = 0; i < options.identities; i++) {
    const identity = await emulator.createIdentity({
      subscriptionId,
      resourceGroup: `${run}-rg`,
      name: `id${i}`,
    });
    identities.push({ id: identity.id, clientId: identity.clientId, principalId: identity.principalId });
  }
  const server = `${run}-pg`;
  await createDatabaseServer(info, kubeConfig, { name: server, namespaces, databases: [database] });
  return { run, database, server, namespaces, identities };
}

/**
 * Member `index` of a fleet: two access resources per identity (service accounts `sa<index>`,
 * spread over the namespaces), sharing the identity's role; `variant` picks the grants, so a test
 * changes them by bumping it (give both accesses of one identity the same variant).
 */
export function fleetAccess(world: FleetWorld, index: number, variant = 0): FleetAccess {
  const identityIndex = Math.floor(index / 2) % world.identities.length;
  const tables: FleetAccess['tables'] = {};
  const first = FLEET_TABLES[(identityIndex + variant) % FLEET_TABLES.length]!;
  const second = FLEET_TABLES[(identityIndex + variant + 1) % FLEET_TABLES.length]!;
  tables[first] = ['SELECT'];
  tables[second] = FLEET_PRIVILEGES.slice(0, 1 + ((identityIndex + variant) % FLEET_PRIVILEGES.length));
  return {
    namespace: world.namespaces[index % world.namespaces.length]!,
    name: `acc${index}`,
    serviceAccount: `sa${index}`,
    identity: world.identities[identityIndex]!,
    role: `${world.database}_r${identityIndex}`,
    tables,
  };
}

export function fleetGrants(access: FleetAccess): Grant[] {
  return [
    { target: 'database', privileges: ['CONNECT'] },
    { target: 'schema', schema: 'public', privileges: ['USAGE'] },
    ...Object.entries(access.tables).map(
      ([table, privileges]): Grant => ({ target: 'tables', schema: 'public', tables: [table], privileges }),
    ),
  ];
}

export async function applyFleetAccess(
  custom: k8s.CustomObjectsApi,
  world: FleetWorld,
  access: FleetAccess,
): Promise<void> {
  await createAccess(custom, access.namespace, access.name, {
    serviceAccountName: access.serviceAccount,
    identity: access.identity.id,
    serverRef: world.server,
    database: world.database,
    roleName: access.role,
    grants: fleetGrants(access),
  });
}

/** Changes an existing fleet access's grants to those of `access` (a merge patch of spec.grants). */
export async function patchFleetGrants(custom: k8s.CustomObjectsApi, access: FleetAccess): Promise<void> {
  await patchAccess(custom, access.namespace, access.name, { grants: fleetGrants(access) });
}

export async function deleteAccess(
  custom: k8s.CustomObjectsApi,
  namespace: string,
  name: string,
): Promise<void> {
  await custom.deleteNamespacedCustomObject({ ...API, plural: ACCESS_PLURAL, namespace, name });
}

/**
 * Deletes an access resource and polls until it is gone or `timeoutMs` has passed: the resource as
 * last read, undefined once gone. With `missingOk`, one that is gone already is no error.
 */
export async function deleteAccessAndWait(
  custom: k8s.CustomObjectsApi,
  namespace: string,
  name: string,
  options: { timeoutMs?: number; missingOk?: boolean } = {},
): Promise<EntraDatabaseAccess | undefined> {
  await deleteAccess(custom, namespace, name).catch((error: unknown) => {
    if (!options.missingOk || statusOf(error) !== 404) throw error;
  });
  return pollUntil(
    () => readAccess(custom, namespace, name),
    (access) => access === undefined,
    options.timeoutMs ?? 60_000,
    200,
  );
}

/**
 * Deletes every access resource in `namespace` and waits (up to `timeoutMs`) until the controller
 * has finalized them all, so a test's afterAll leaves no FIC or role behind. Never throws.
 */
export async function deleteAccessesAndWait(
  custom: k8s.CustomObjectsApi,
  namespace: string,
  timeoutMs = 30_000,
): Promise<void> {
  const items = await listAccesses(custom, namespace).catch(() => []);
  for (const item of items) await deleteAccess(custom, namespace, item.metadata.name ?? '').catch(() => {});
  await pollUntil(
    () =>
      listAccesses(custom, namespace).then(
        (l) => l.length,
        () => 0,
      ),
    (n) => n === 0,
    timeoutMs,
    250,
  );
}

export interface FleetExpectation {
  /** The access resources that should exist now, with what each should have. */
  live: FleetAccess[];
  /** Roles of fleet accesses deleted since (when no live access names them): must be gone. */
  gone?: string[];
}

/**
 * Everything about the fleet that is not converged yet, as readable lines; [] means converged:
 * - every live access exists, is Ready for its generation, names its role as the user and no other
 *   access resource exists in the fleet's namespaces (a deleted one whose finalizer never ran);
 * - every identity of the world has exactly one FIC per service account of its live accesses,
 *   for this cluster's issuer, and no other (no duplicate, no orphan);
 * - every identity with live accesses maps to exactly its role (rolesOfPrincipal), one without
 *   maps to none; each role has exactly the union of its accesses' table privileges on the fleet
 *   tables; the roles in `gone` do not exist.
 */
export async function fleetProblems(
  info: HarnessInfo,
  custom: k8s.CustomObjectsApi,
  emulator: AzureEmulatorClient,
  world: FleetWorld,
  expected: FleetExpectation,
): Promise<string[]> {
  const problems: string[] = [];
  const key = (namespace: string, name: string) => `${namespace}/${name}`;
  const wanted = new Map(expected.live.map((a) => [key(a.namespace, a.name), a]));
  const seen = new Set<string>();
  for (const namespace of world.namespaces) {
    for (const access of await listAccesses(custom, namespace)) {
      const k = key(namespace, access.metadata.name ?? '');
      seen.add(k);
      const want = wanted.get(k);
      if (!want) {
        problems.push(
          `access ${k} should not exist (deletionTimestamp ${access.metadata.deletionTimestamp})`,
        );
        continue;
      }
      if (!isReady(access)) {
        const ready = conditionOf(access);
        problems.push(
          `access ${k} not Ready for generation ${access.metadata.generation} (observed ${access.status?.observedGeneration}): ${ready?.reason} ${ready?.message}`,
        );
      } else if (access.status?.connection?.user !== want.role) {
        problems.push(`access ${k} has user ${access.status?.connection?.user}, not ${want.role}`);
      }
    }
  }
  for (const k of wanted.keys()) if (!seen.has(k)) problems.push(`access ${k} does not exist`);

  const emulated = await emulator.listIdentities();
  for (const identity of world.identities) {
    const fics = (
      emulated.find((i) => i.id.toLowerCase() === identity.id.toLowerCase())?.federatedIdentityCredentials ??
      []
    ).filter((f) => f.properties.issuer === info.kubernetes.issuer);
    const subjects = fics.map((f) => f.properties.subject).sort();
    const want = [
      ...new Set(
        expected.live
          .filter((a) => a.identity.id === identity.id)
          .map((a) => `system:serviceaccount:${a.namespace}:${a.serviceAccount}`),
      ),
    ].sort();
    if (JSON.stringify(subjects) !== JSON.stringify(want))
      problems.push(
        `identity ${identity.id.split('/').pop()} FIC subjects ${JSON.stringify(subjects)}, want ${JSON.stringify(want)}`,
      );
  }

  const roles = new Map<string, FleetAccess[]>();
  for (const a of expected.live) roles.set(a.role, [...(roles.get(a.role) ?? []), a]);
  for (const identity of world.identities) {
    const want = [...new Set(expected.live.filter((a) => a.identity.id === identity.id).map((a) => a.role))];
    const have = await rolesOfPrincipal(info, identity.principalId);
    if (JSON.stringify(have) !== JSON.stringify(want.sort()))
      problems.push(
        `principal of ${identity.id.split('/').pop()} maps to roles ${JSON.stringify(have)}, want ${JSON.stringify(want)}`,
      );
  }
  for (const [role, accesses] of roles) {
    const rows = await superuserQuery<{ tbl: string; privilege: string; ok: boolean }>(
      info,
      `SELECT t AS tbl, p AS privilege, has_table_privilege($1, 'public.' || t, p) AS ok
         FROM unnest($2::text[]) t, unnest($3::text[]) p`,
      [role, [...FLEET_TABLES], [...FLEET_PRIVILEGES]],
      world.database,
    ).catch((error: Error) => {
      problems.push(`role ${role}: ${error.message}`);
      return [];
    });
    for (const row of rows) {
      const want = accesses.some((a) =>
        (a.tables[row.tbl as (typeof FLEET_TABLES)[number]] ?? []).includes(row.privilege as TablePrivilege),
      );
      if (row.ok !== want)
        problems.push(`role ${role} ${row.ok ? 'has' : 'lacks'} ${row.privilege} on ${row.tbl}`);
    }
  }
  const gone = (expected.gone ?? []).filter((role) => !roles.has(role));
  if (gone.length > 0) {
    const left = await superuserQuery<{ rolname: string }>(
      info,
      'SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])',
      [gone],
    );
    for (const row of left) problems.push(`role ${row.rolname} of a deleted access still exists`);
  }
  return problems;
}

/**
 * Polls fleetProblems until it is empty or `timeoutMs` passes; logs and returns how long it took
 * (from `since`) and what was still wrong, for the caller to assert on.
 */
export async function waitForFleet(
  label: string,
  check: () => Promise<string[]>,
  options: { since?: number; timeoutMs?: number } = {},
): Promise<{ ms: number; problems: string[] }> {
  const since = options.since ?? Date.now();
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    const problems = await check();
    if (problems.length === 0 || Date.now() > deadline) {
      const ms = Date.now() - since;
      console.log(
        problems.length === 0
          ? `[faults] ${label}: converged in ${ms} ms`
          : `[faults] ${label}: NOT converged after ${ms} ms:\n  ${problems.join('\n  ')}`,
      );
      return { ms, problems };
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
