// The app's side, played with what the pod got and nothing else: the kubelet's projected token
// (a TokenRequest bound to the pod, with the volume's audience), the real @azure/identity
// WorkloadIdentityCredential built from the pod's AZURE_* env, and node-postgres logging in as
// status.connection.user with a fresh token as the password for each new connection.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkloadIdentityCredential } from '@azure/identity';
import type * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import type { ConnectionStatus } from '../../src/api/types.ts';
import type { HarnessInfo } from '../../test/harness/harness.ts';
import { podEnv, projectedToken } from './pod.ts';

export interface App {
  credential: WorkloadIdentityCredential;
  connection: ConnectionStatus;
  /** The subject and audience of the projected token, to show. */
  projected: { subject: string; audience: string };
}

const claims = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

/** The kubelet's part: a TokenRequest bound to the pod, written where the pod reads it. */
async function projectToken(info: HarnessInfo, core: k8s.CoreV1Api, pod: k8s.V1Pod): Promise<string> {
  const { audience, expirationSeconds } = projectedToken(pod);
  const response = await core.createNamespacedServiceAccountToken({
    namespace: pod.metadata?.namespace ?? '',
    name: pod.spec?.serviceAccountName ?? 'default',
    body: {
      spec: {
        audiences: [audience],
        expirationSeconds,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name, uid: pod.metadata?.uid },
      },
    },
  });
  const token = response.status?.token;
  if (!token) throw new Error('TokenRequest returned no token');
  const dir = join(info.dir, 'demo-pod');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'azure-identity-token');
  await writeFile(file, token, { mode: 0o600 });
  return file;
}

/** The app as its pod would start it; `connection` is the access resource's status.connection. */
export async function startApp(
  info: HarnessInfo,
  core: k8s.CoreV1Api,
  pod: k8s.V1Pod,
  connection: ConnectionStatus,
): Promise<App> {
  const env = podEnv(pod);
  const tokenFilePath = await projectToken(info, core, pod);
  const jwt = claims(readFileSync(tokenFilePath, 'utf8'));
  return {
    // In the pod, AZURE_FEDERATED_TOKEN_FILE names the mount; here the same token sits in a file.
    credential: new WorkloadIdentityCredential({
      tenantId: env.AZURE_TENANT_ID,
      clientId: env.AZURE_CLIENT_ID,
      authorityHost: env.AZURE_AUTHORITY_HOST,
      tokenFilePath,
      // The emulator is the authority: no instance discovery against the public cloud.
      disableInstanceDiscovery: true,
    }),
    connection,
    projected: { subject: String(jwt.sub), audience: String([jwt.aud].flat()[0]) },
  };
}

/** The exchange: the projected token for an Entra token for the server's scope. */
export async function exchangeToken(app: App): Promise<{ token: string; expiresOn: Date; oid: string }> {
  const token = await app.credential.getToken(app.connection.tokenScope ?? '');
  if (!token) throw new Error(`no token for ${app.connection.tokenScope}`);
  return {
    token: token.token,
    expiresOn: new Date(token.expiresOnTimestamp),
    oid: String(claims(token.token).oid),
  };
}

/** One connection, password = a token from the credential; the rows, or the server's refusal. */
export async function query(
  info: HarnessInfo,
  app: App,
  sql: string,
): Promise<{ rows: Record<string, unknown>[] } | { error: string }> {
  const { host, port, database, user, tokenScope } = app.connection;
  const client = new pg.Client({
    host,
    port,
    database,
    user,
    password: async () => (await app.credential.getToken(tokenScope ?? ''))!.token,
    // sslMode verify-full: the server's certificate must chain to the CA and name the host.
    ssl: { ca: readFileSync(info.caFile, 'utf8'), rejectUnauthorized: true },
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return { rows: (await client.query(sql)).rows };
  } catch (error) {
    return { error: (error as Error).message };
  } finally {
    await client.end().catch(() => {});
  }
}
