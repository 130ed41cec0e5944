// The whole local stand-in for "an AKS cluster, Entra, ARM and a PostgreSQL flexible server":
// real etcd + kube-apiserver, real PostgreSQL with the pgaadauth stand-ins, and the Azure
// emulator, all sharing one test CA. Used by the vitest global setup and by `make demo`.
import { randomInt, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startAzureEmulator } from './azure-emulator/launch.ts';
import { PUBLIC_CLOUD_AUTHORITY_HOSTS } from './azure-emulator/well-known.ts';
import { installCrds, type RestartApiServerOptions, startControlPlane } from './control-plane.ts';
import { createCertificateAuthority, issueCertificate } from './pki.ts';
import { createEntraAdmin, startPostgres } from './postgres.ts';
import { makeTempDir, makeWorldReadable, removeTempDir } from './processes.ts';

/** Everything a test needs to reach the harness; plain data, so it crosses into test workers. */
export interface HarnessInfo {
  dir: string;
  caFile: string;
  kubernetes: { url: string; issuer: string; kubeconfigPath: string };
  postgres: {
    host: string;
    port: number;
    superuserUrl: string;
    logFile: string | undefined;
    version: string;
  };
  azure: {
    url: string;
    tenantId: string;
    /**
     * Where the emulator answers as login.microsoftonline.com and its aliases (a loopback address
     * of its own, port 443, a certificate for those names from the harness CA), for clients run
     * in a pod sandbox (pod-sandbox.ts); or why it does not.
     */
    wellKnown: { ip: string; hostNames: string[] } | { unavailable: string };
    /** The operator's own managed identity: federated to its ServiceAccount, Entra admin of PostgreSQL. */
    operator: {
      subscriptionId: string;
      resourceGroup: string;
      resourceId: string;
      clientId: string;
      principalId: string;
      namespace: string;
      serviceAccount: string;
      postgresAdminRole: string;
    };
  };
  versions: { kubernetes: string; postgres: string };
}

export interface Harness {
  info: HarnessInfo;
  stop(): Promise<void>;
  /**
   * Restarts PostgreSQL on the same port, socket and data (SIGTERM, or SIGKILL with `crash`),
   * down for `downMs`: the emulator's gateway and every client reconnect to it.
   */
  restartPostgres(options?: { crash?: boolean; downMs?: number }): Promise<void>;
  /**
   * Restarts kube-apiserver on the same port and etcd data (see ControlPlane.restartApiServer):
   * every watch is dropped; with `compactEtcd` an old resourceVersion is answered 410 Gone.
   */
  restartApiServer(options?: RestartApiServerOptions): Promise<void>;
}

export interface HarnessOptions {
  installCrds?: boolean;
}

export const OPERATOR = {
  subscriptionId: '00000000-0000-0000-0000-0000000000aa',
  resourceGroup: 'entra-access-system',
  name: 'entra-access-operator',
  namespace: 'entra-access-system',
  serviceAccount: 'entra-access',
} as const;

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = makeTempDir('harness');
  // PostgreSQL runs as the `postgres` OS user when we are root and must reach its data dir.
  await makeWorldReadable(dir);
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const fn of stops.reverse()) await fn().catch(() => {});
    removeTempDir(dir);
  };
  try {
    const tenantId = randomUUID();
    const ca = await createCertificateAuthority('entra-access harness CA');
    const caFile = join(dir, 'ca.crt');
    await writeFile(caFile, ca.certPem);

    const controlPlane = await startControlPlane({ dir, ca, caFile });
    stops.push(controlPlane.stop);
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(controlPlane.kubeconfigPath);
    if (options.installCrds) await installCrds(kubeConfig);

    const postgres = await startPostgres({ dir, tenantId, ca, caFile });
    stops.push(postgres.stop);

    const emulatorTls = await issueCertificate(ca, {
      commonName: 'azure-emulator',
      usage: 'server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const certFile = join(dir, 'azure-emulator.crt');
    const keyFile = join(dir, 'azure-emulator.key');
    await writeFile(certFile, emulatorTls.certPem);
    await writeFile(keyFile, emulatorTls.keyPem, { mode: 0o600 });
    const wellKnown = await wellKnownListener(dir, ca);
    const emulator = await startAzureEmulator({
      dir,
      caFile,
      certFile,
      keyFile,
      tenantId,
      postgres: { adminUrl: postgres.superuserUrl(), upstreamSocket: postgres.socketPath },
      ...('host' in wellKnown ? { wellKnown } : {}),
    });
    if (emulator.postgresPort === undefined)
      throw new Error('the Azure emulator started no PostgreSQL gateway');
    stops.push(emulator.stop);

    const operator = await setUpOperatorIdentity(kubeConfig, emulator.client, controlPlane.issuer);
    await createEntraAdmin(postgres, OPERATOR.name, operator.principalId);

    const info: HarnessInfo = {
      dir,
      caFile,
      kubernetes: {
        url: controlPlane.url,
        issuer: controlPlane.issuer,
        kubeconfigPath: controlPlane.kubeconfigPath,
      },
      postgres: {
        host: '127.0.0.1',
        port: emulator.postgresPort,
        superuserUrl: postgres.superuserUrl(),
        logFile: postgres.logFile,
        version: postgres.version,
      },
      azure: {
        url: emulator.url,
        tenantId,
        wellKnown: !('host' in wellKnown)
          ? wellKnown
          : emulator.wellKnown && 'host' in emulator.wellKnown
            ? { ip: emulator.wellKnown.host, hostNames: [...PUBLIC_CLOUD_AUTHORITY_HOSTS] }
            : {
                unavailable: emulator.wellKnown?.error ?? 'the emulator did not listen as the authority host',
              },
        operator: {
          subscriptionId: OPERATOR.subscriptionId,
          resourceGroup: OPERATOR.resourceGroup,
          resourceId: operator.id,
          clientId: operator.clientId,
          principalId: operator.principalId,
          namespace: OPERATOR.namespace,
          serviceAccount: OPERATOR.serviceAccount,
          postgresAdminRole: OPERATOR.name,
        },
      },
      versions: { kubernetes: controlPlane.version, postgres: postgres.version },
    };
    await writeFile(join(dir, 'harness.json'), JSON.stringify(info, null, 2));
    return {
      info,
      stop,
      restartPostgres: (restart) => postgres.restart(restart),
      restartApiServer: (restart) => controlPlane.restartApiServer(restart),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A loopback address of this run's own for the emulator to answer on as the well-known authority
 * hosts (port 443, so root only: the pod sandbox needs root too), with a certificate for them.
 * 127.0.0.0/8 is all loopback on Linux; a random address keeps two harnesses apart.
 */
async function wellKnownListener(
  dir: string,
  ca: Awaited<ReturnType<typeof createCertificateAuthority>>,
): Promise<{ host: string; certFile: string; keyFile: string } | { unavailable: string }> {
  if (process.getuid?.() !== 0) {
    return { unavailable: 'the harness is not running as root (port 443 and the pod sandbox need it)' };
  }
  const host = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
  const tls = await issueCertificate(ca, {
    commonName: PUBLIC_CLOUD_AUTHORITY_HOSTS[0],
    usage: 'server',
    dnsNames: [...PUBLIC_CLOUD_AUTHORITY_HOSTS],
  });
  const certFile = join(dir, 'entra-authority.crt');
  const keyFile = join(dir, 'entra-authority.key');
  await writeFile(certFile, tls.certPem);
  await writeFile(keyFile, tls.keyPem, { mode: 0o600 });
  return { host, certFile, keyFile };
}

/**
 * The operator's identity, wired as on AKS: a managed identity with a federated credential for
 * the operator's ServiceAccount, so the operator gets ARM and PostgreSQL tokens by workload identity.
 */
async function setUpOperatorIdentity(
  kubeConfig: k8s.KubeConfig,
  emulator: Awaited<ReturnType<typeof startAzureEmulator>>['client'],
  issuer: string,
): Promise<{ id: string; clientId: string; principalId: string }> {
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: OPERATOR.namespace } } });
  await core.createNamespacedServiceAccount({
    namespace: OPERATOR.namespace,
    body: { metadata: { name: OPERATOR.serviceAccount } },
  });
  const identity = await emulator.createIdentity({
    subscriptionId: OPERATOR.subscriptionId,
    resourceGroup: OPERATOR.resourceGroup,
    name: OPERATOR.name,
  });
  await emulator.putFederatedCredential(identity.id, 'entra-access-operator', {
    issuer,
    subject: `system:serviceaccount:${OPERATOR.namespace}:${OPERATOR.serviceAccount}`,
    audiences: ['api://AzureADTokenExchange'],
  });
  return identity;
}
