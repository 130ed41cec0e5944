// A real Kubernetes control plane as plain processes: etcd and kube-apiserver, started the way
// controller-runtime's envtest starts them, plus what envtest leaves out and this project needs:
// RBAC authorization, client-certificate admin credentials, and service-account token signing
// with an https issuer, so TokenRequest and anonymous OIDC discovery (/openid/v1/jwks) work the
// way Entra reaches an AKS cluster's issuer.

import { readdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { findControlPlaneAssets } from './assets.ts';
import { type CertificateAuthority, createRsaSigningKeyPem, issueCertificate } from './pki.ts';
import { freePort } from './ports.ts';
import { type ManagedProcess, startProcess } from './processes.ts';

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  url: string;
  /** The service-account issuer; equal to `url`, so Entra-style discovery reaches this apiserver. */
  issuer: string;
  kubeconfigPath: string;
  /** gitVersion reported by the running apiserver, e.g. v1.35.4. */
  version: string;
  etcd: ManagedProcess;
  /** The running kube-apiserver (a new process after `restartApiServer`). */
  readonly apiserver: ManagedProcess;
  stop(): Promise<void>;
  /**
   * Stops the kube-apiserver (SIGTERM, or SIGKILL with `crash`), optionally keeps it down for
   * `downMs` and compacts etcd at its current revision, then starts it again on the same port,
   * certificates and etcd data, and waits until it is ready. Every watch is dropped; with
   * `compactEtcd` a client that resumes from its last resourceVersion gets 410 Gone and must relist.
   */
  restartApiServer(options?: RestartApiServerOptions): Promise<void>;
  /** Compacts etcd at its current revision (older revisions are gone); returns that revision. */
  compactEtcd(): Promise<number>;
}

export interface RestartApiServerOptions {
  crash?: boolean;
  downMs?: number;
  compactEtcd?: boolean;
}

export interface ControlPlaneOptions {
  dir: string;
  ca: CertificateAuthority;
  caFile: string;
}

const crdDir = new URL('../../crds/', import.meta.url).pathname;

async function startEtcd(dir: string, binary: string): Promise<{ process: ManagedProcess; url: string }> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const etcd = await startProcess({
    name: 'etcd',
    command: binary,
    args: [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
      // Test data need not survive a power cut; fsync dominates etcd latency on small disks.
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ],
    logDir: dir,
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const health = await fetch(`${url}/health`).then(
      (r) => r.json() as Promise<{ health?: string }>,
      () => undefined,
    );
    if (health?.health === 'true') return { process: etcd, url };
    if (etcd.child.exitCode !== null || Date.now() > deadline) {
      await etcd.stop();
      throw new Error(`etcd did not become healthy:\n${etcd.tail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function httpsGet(
  url: string,
  tls: { ca: string; cert: string; key: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, method: 'GET', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function kubeconfigYaml(server: string, caPem: string, admin: { certPem: string; keyPem: string }): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: harness',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(caPem)}`,
    'users:',
    '- name: harness-admin',
    '  user:',
    `    client-certificate-data: ${b64(admin.certPem)}`,
    `    client-key-data: ${b64(admin.keyPem)}`,
    'contexts:',
    '- name: harness',
    '  context: {cluster: harness, user: harness-admin}',
    'current-context: harness',
    '',
  ].join('\n');
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { dir, ca, caFile } = options;
  const assets = findControlPlaneAssets();
  const etcd = await startEtcd(dir, assets.etcd);

  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const serving = await issueCertificate(ca, {
    commonName: 'kube-apiserver',
    usage: 'server',
    dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
    ipAddresses: ['127.0.0.1', '10.0.0.1'],
  });
  // system:masters is the bootstrap superuser group; RBAC is on for everyone else.
  const admin = await issueCertificate(ca, {
    commonName: 'entra-access-harness-admin',
    organization: 'system:masters',
    usage: 'client',
  });
  const files = {
    servingCert: join(dir, 'apiserver.crt'),
    servingKey: join(dir, 'apiserver.key'),
    saKey: join(dir, 'sa-signing.key'),
    kubeconfig: join(dir, 'kubeconfig'),
  };
  await writeFile(files.servingCert, serving.certPem);
  await writeFile(files.servingKey, serving.keyPem, { mode: 0o600 });
  await writeFile(files.saKey, await createRsaSigningKeyPem(), { mode: 0o600 });
  await writeFile(files.kubeconfig, kubeconfigYaml(url, ca.certPem, admin), { mode: 0o600 });

  const startApiserver = (): Promise<ManagedProcess> =>
    startProcess({
      name: 'kube-apiserver',
      command: assets.kubeApiserver,
      args: [
        `--etcd-servers=${etcd.url}`,
        `--secure-port=${port}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--cert-dir=${join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${files.servingCert}`,
        `--tls-private-key-file=${files.servingKey}`,
        `--client-ca-file=${caFile}`,
        '--authorization-mode=RBAC',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        `--service-account-issuer=${url}`,
        `--service-account-key-file=${files.saKey}`,
        `--service-account-signing-key-file=${files.saKey}`,
        '--v=1',
      ],
      logDir: dir,
    });
  let apiserver: ManagedProcess;
  try {
    apiserver = await startApiserver();
  } catch (error) {
    await etcd.process.stop();
    throw error;
  }

  const stop = async (): Promise<void> => {
    await apiserver.stop();
    await etcd.process.stop();
  };

  try {
    const tls = { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem };
    await waitForReady(url, tls, apiserver);
    const version = (JSON.parse((await httpsGet(`${url}/version`, tls)).body) as { gitVersion: string })
      .gitVersion;
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(files.kubeconfig);
    await allowAnonymousIssuerDiscovery(kubeConfig);
    const compactEtcd = () => compactEtcdAt(etcd.url);
    return {
      url,
      issuer: url,
      kubeconfigPath: files.kubeconfig,
      version,
      etcd: etcd.process,
      get apiserver() {
        return apiserver;
      },
      stop,
      compactEtcd,
      async restartApiServer(restart = {}) {
        if (restart.crash) await apiserver.kill();
        else await apiserver.stop();
        if (restart.compactEtcd) await compactEtcd();
        if (restart.downMs) await new Promise((resolve) => setTimeout(resolve, restart.downMs));
        apiserver = await startApiserver();
        await waitForReady(url, tls, apiserver);
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** etcd's JSON gateway: the current revision, then a physical compaction at it. */
async function compactEtcdAt(etcdUrl: string): Promise<number> {
  const post = async (path: string, body: unknown): Promise<unknown> => {
    const response = await fetch(`${etcdUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`etcd ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  // Any key will do: every response carries the store's current revision in its header.
  const range = (await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') })) as {
    header?: { revision?: string };
  };
  const revision = Number(range.header?.revision);
  if (!Number.isInteger(revision) || revision <= 0)
    throw new Error(`etcd reported no revision: ${JSON.stringify(range)}`);
  await post('/v3/kv/compaction', { revision: String(revision), physical: true });
  return revision;
}

async function waitForReady(
  url: string,
  tls: { ca: string; cert: string; key: string },
  apiserver: ManagedProcess,
): Promise<void> {
  const deadline = Date.now() + 90_000;
  let last = '';
  while (Date.now() < deadline) {
    if (apiserver.child.exitCode !== null) {
      throw new Error(`kube-apiserver exited with ${apiserver.child.exitCode}:\n${apiserver.tail()}`);
    }
    try {
      const res = await httpsGet(`${url}/readyz`, tls);
      if (res.status === 200) return;
      last = `${res.status} ${res.body}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`kube-apiserver not ready after 90 s (last: ${last}):\n${apiserver.tail()}`);
}

/**
 * Entra fetches the issuer's discovery document and JWKS without credentials, as AKS serves
 * them publicly. Kubernetes' bootstrap policy binds the discovery role only to service accounts,
 * so grant it to unauthenticated callers as the Kubernetes docs describe for external issuers.
 */
async function allowAnonymousIssuerDiscovery(kubeConfig: k8s.KubeConfig): Promise<void> {
  const rbac = kubeConfig.makeApiClient(k8s.RbacAuthorizationV1Api);
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: 'harness-anonymous-issuer-discovery' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'system:service-account-issuer-discovery',
      },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
    },
  });
}

/** Applies every CustomResourceDefinition in crds/ and waits until each is Established. */
export async function installCrds(kubeConfig: k8s.KubeConfig, dir = crdDir): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  const api = kubeConfig.makeApiClient(k8s.ApiextensionsV1Api);
  const names: string[] = [];
  for (const file of files) {
    for (const doc of k8s.loadAllYaml(await readFile(join(dir, file), 'utf8'))) {
      const crd = doc as k8s.V1CustomResourceDefinition;
      if (crd?.kind !== 'CustomResourceDefinition') continue;
      await api.createCustomResourceDefinition({ body: crd });
      names.push(crd.metadata?.name ?? '');
    }
  }
  for (const name of names) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const crd = await api.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return names;
}
