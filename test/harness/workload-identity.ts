// Test-side plumbing for "be a pod with workload identity": a TokenRequest token written where
// the AKS webhook would project it, and the real @azure/identity credential reading it.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import type { TokenCredential } from '@azure/identity';
import { WorkloadIdentityCredential } from '@azure/identity';
import * as k8s from '@kubernetes/client-node';
import type { HarnessInfo } from './harness.ts';

export const ENTRA_AUDIENCE = 'api://AzureADTokenExchange';
export const ARM_SCOPE = 'https://management.azure.com/.default';
export const POSTGRES_SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';

export async function serviceAccountToken(
  kubeConfig: k8s.KubeConfig,
  namespace: string,
  name: string,
  audience = ENTRA_AUDIENCE,
): Promise<string> {
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const response = await core.createNamespacedServiceAccountToken({
    namespace,
    name,
    body: { spec: { audiences: [audience], expirationSeconds: 3600 } },
  });
  const token = response.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  return token;
}

let tokenFiles = 0;

/** The credential a pod's Azure SDK builds from the env vars the workload-identity webhook injects. */
export async function workloadIdentityCredential(
  info: HarnessInfo,
  clientId: string,
  serviceAccountJwt: string,
): Promise<WorkloadIdentityCredential> {
  const dir = join(info.dir, 'projected-tokens', String(process.pid));
  await mkdir(dir, { recursive: true });
  const tokenFilePath = join(dir, `token-${++tokenFiles}`);
  await writeFile(tokenFilePath, serviceAccountJwt, { mode: 0o600 });
  return new WorkloadIdentityCredential({
    tenantId: info.azure.tenantId,
    clientId,
    tokenFilePath,
    authorityHost: info.azure.url,
    disableInstanceDiscovery: true,
  });
}

/** The operator's own credential, as its pod would have it. */
export async function operatorCredential(
  info: HarnessInfo,
  kubeConfig: k8s.KubeConfig,
): Promise<TokenCredential> {
  const { namespace, serviceAccount, clientId } = info.azure.operator;
  return workloadIdentityCredential(
    info,
    clientId,
    await serviceAccountToken(kubeConfig, namespace, serviceAccount),
  );
}

export function managedIdentityClient(
  info: HarnessInfo,
  credential: TokenCredential,
  subscriptionId: string,
): ManagedServiceIdentityClient {
  return new ManagedServiceIdentityClient(credential, subscriptionId, {
    endpoint: info.azure.url,
    credentialScopes: [ARM_SCOPE],
  });
}
