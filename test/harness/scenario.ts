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
import type { EntraDatabaseAccess, EntraDatabaseServer, Grant } from '../../src/api/types.ts';
import { parseConfig } from '../../src/config.ts';
import { type ControllerRole, createControllerRole } from '../../src/controller/role.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { createMetrics, type Metrics } from '../../src/observability/metrics.ts';
import type { HarnessInfo } from './harness.ts';
import { type ManagedProcess, startProcess } from './processes.ts';
import { POSTGRES_SCOPE, serviceAccountToken, workloadIdentityCredential } from './workload-identity.ts';

export const API = { group: GROUP, version: VERSION } as const;
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
}

/**
 * An EntraDatabaseServer for the harness PostgreSQL (through the Entra gateway, TLS verify-full
 * against the harness CA, stored in a Secret in the operator's namespace).
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
    body: { metadata: { name: secretName }, stringData: { 'ca.crt': readFileSync(info.caFile, 'utf8') } },
  });
  await custom.createClusterCustomObject({
    ...API,
    plural: SERVER_PLURAL,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'EntraDatabaseServer',
      metadata: { name: options.name },
      spec: {
        host: 'localhost',
        port: info.postgres.port,
        sslMode: 'verify-full',
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
  grants?: Grant[];
  deletionPolicy?: 'Delete' | 'Orphan';
}

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
        grants: grants ?? [{ on: 'database', privileges: ['CONNECT'] }],
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

export const conditionOf = (access: EntraDatabaseAccess | undefined, type = 'Ready') =>
  access?.status?.conditions?.find((c) => c.type === type);

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
): Promise<ControllerRole> {
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
  const controller = createControllerRole(config, {
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
