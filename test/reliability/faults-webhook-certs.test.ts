// The webhook's certificate files replaced while admissions run (issue 8, "Faults"), with the
// certificate provided from outside (--cert-mode=external, as cert-manager and a kubelet Secret
// volume provide it): the real CLI serves pods; admissions flow the whole time through the real
// apiserver (a MutatingWebhookConfiguration with failurePolicy Fail) and directly over HTTPS, on
// new connections and on one kept-alive connection. The pair is replaced three times: twice as a
// kubelet Secret volume does (a new timestamped directory, `..data` swapped atomically) and once
// rewritten in place, certificate then key (a writer caught between the two leaves a mismatched
// pair for a moment). Not one admission may fail, and each new serial must be served, without a
// restart. The self-managed mode (--cert-mode=self, CA rotation) is covered in
// test/integration/webhook-certificates.test.ts.
import { randomUUID, X509Certificate } from 'node:crypto';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POD_WEBHOOK_PATH, WI_CLIENT_ID_ANNOTATION, WI_USE_LABEL } from '../../src/api/constants.ts';
import { adminKubeConfig, harnessInfo, pollUntil, sleep, uniqueName } from '../harness/context.ts';
import { appPod, podWebhook } from '../harness/kube.ts';
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from '../harness/pki.ts';
import { freePort } from '../harness/ports.ts';
import { type ManagedProcess, makeTempDir, removeTempDir } from '../harness/processes.ts';
import { startOperatorProcess } from '../harness/scenario.ts';

const info = harnessInfo();
const run = uniqueName('fzw');
const CLIENT_ID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';

function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca }, () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber ?? '';
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

/** POSTs an AdmissionReview for a pod over HTTPS; resolves with the decoded response. */
function admitDirectly(
  port: number,
  agent: Agent,
  namespace: string,
): Promise<{ allowed: boolean; patch: Array<{ op: string; path: string; value?: unknown }> }> {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'faults-test' },
      dryRun: false,
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        ...appPod('app', { generateName: 'direct-', namespace }),
      },
    },
  });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: POD_WEBHOOK_PATH,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text}`));
          const review = JSON.parse(text) as { response: { allowed: boolean; patch?: string } };
          resolve({
            allowed: review.response.allowed,
            patch: review.response.patch
              ? JSON.parse(Buffer.from(review.response.patch, 'base64').toString('utf8'))
              : [],
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

describe.skipIf(!info)("the webhook's certificate files replaced while admissions run", () => {
  const namespace = `${run}-apps`;
  const configurationName = `${run}-pods`;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let admission: k8s.AdmissionregistrationV1Api;
  let dir: string;
  let certDir: string;
  let ca: CertificateAuthority;
  let port: number;
  let webhook: ManagedProcess | undefined;
  let generation = 0;

  /** A new serving pair for 127.0.0.1 from the test CA; returns its serial. */
  async function issue(): Promise<{ cert: string; key: string; serial: string }> {
    const pair = await issueCertificate(ca, {
      commonName: 'entra-access-webhook',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
      dnsNames: ['localhost'],
    });
    return { cert: pair.certPem, key: pair.keyPem, serial: new X509Certificate(pair.certPem).serialNumber };
  }

  /** As the kubelet updates a Secret volume: a new directory, then `..data` swapped atomically. */
  async function publishAtomically(pair: { cert: string; key: string }): Promise<void> {
    generation += 1;
    const data = `..${new Date().toISOString().replaceAll(':', '_')}.${generation}`;
    await mkdir(join(certDir, data));
    await writeFile(join(certDir, data, 'tls.crt'), pair.cert);
    await writeFile(join(certDir, data, 'tls.key'), pair.key, { mode: 0o600 });
    await symlink(data, join(certDir, '..data_tmp'));
    await rename(join(certDir, '..data_tmp'), join(certDir, '..data'));
  }

  beforeAll(async () => {
    kc = adminKubeConfig(info!);
    core = kc.makeApiClient(k8s.CoreV1Api);
    admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    dir = makeTempDir('faults-webhook-certs');
    certDir = join(dir, 'serving-certs');
    await mkdir(certDir);
    ca = await createCertificateAuthority(`${run} webhook CA`);
    await publishAtomically(await issue());
    await symlink('..data/tls.crt', join(certDir, 'tls.crt'));
    await symlink('..data/tls.key', join(certDir, 'tls.key'));

    await core.createNamespace({
      body: {
        metadata: {
          name: namespace,
          labels: { 'entra-access-test': run, 'entra-access.io/workload-identity': 'enabled' },
          annotations: { 'entra-access.io/workload-identity': 'enabled' },
        },
      },
    });
    await core.createNamespacedServiceAccount({
      namespace,
      body: { metadata: { name: 'app', annotations: { [WI_CLIENT_ID_ANNOTATION]: CLIENT_ID } } },
    });

    port = await freePort();
    webhook = await startOperatorProcess(info!, {
      name: 'webhook',
      logDir: dir,
      tokenFile: join(dir, 'unused-token'),
      clusterName: run,
      args: [
        '--webhook',
        `--cert-dir=${certDir}`,
        `--webhook-port=${port}`,
        '--bind-address=127.0.0.1',
        '--injection-mode=inject',
        `--tenant-id=${TENANT_ID}`,
        '--metrics-port=0',
        '--health-port=0',
      ],
    });
    await pollUntil(
      () => servedSerial(port, ca.certPem).catch(() => ''),
      (serial) => serial !== '',
      30_000,
      200,
    );
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: configurationName },
        webhooks: [
          podWebhook({
            baseUrl: `https://127.0.0.1:${port}`,
            caBundle: Buffer.from(ca.certPem).toString('base64'),
            namespaceSelector: {
              matchLabels: { 'entra-access-test': run, 'entra-access.io/workload-identity': 'enabled' },
            },
          }),
        ],
      },
    });
  });

  afterAll(async () => {
    await admission?.deleteMutatingWebhookConfiguration({ name: configurationName }).catch(() => {});
    await core?.deleteNamespace({ name: namespace }).catch(() => {});
    await webhook?.stop();
    if (dir) removeTempDir(dir);
  });

  it('fails no admission, through the apiserver or directly, and serves each new serial without a restart', async () => {
    const admitThroughApiserver = async () => {
      const pod = await core.createNamespacedPod({
        namespace,
        dryRun: 'All',
        body: appPod('app', { generateName: 'load-' }),
      });
      if (pod.metadata?.labels?.[WI_USE_LABEL] !== 'true') throw new Error('admitted without the webhook');
    };
    const fresh = new Agent({ ca: ca.certPem, keepAlive: false });
    const kept = new Agent({ ca: ca.certPem, keepAlive: true, maxSockets: 1 });
    const admitDirect = (agent: Agent) => async () => {
      const answer = await admitDirectly(port, agent, namespace);
      // The pod has no labels: the patch adds the map whole, with the use label in it.
      const labelled = answer.patch.some(
        (op) =>
          (op.path === '/metadata/labels' &&
            (op.value as Record<string, string>)?.[WI_USE_LABEL] === 'true') ||
          (op.path === '/metadata/labels/azure.workload.identity~1use' && op.value === 'true'),
      );
      if (!answer.allowed || !labelled) throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
    };
    // The webhook must be serving through the apiserver before the clock starts.
    await pollUntil(
      () =>
        admitThroughApiserver().then(
          () => true,
          () => false,
        ),
      (ok) => ok,
      30_000,
      200,
    );

    let running = true;
    const counts = { apiserver: 0, fresh: 0, keptAlive: 0 };
    const failures: string[] = [];
    const loop = (kind: keyof typeof counts, admit: () => Promise<void>) =>
      (async () => {
        while (running) {
          try {
            await admit();
            counts[kind] += 1;
          } catch (error) {
            failures.push(`${kind}: ${(error as Error).message}`);
          }
        }
      })();
    const workers = [
      loop('apiserver', admitThroughApiserver),
      loop('apiserver', admitThroughApiserver),
      loop('fresh', admitDirect(fresh)),
      loop('keptAlive', admitDirect(kept)),
    ];
    await sleep(1500);

    const switches: string[] = [];
    const replace = async (how: string, write: (pair: { cert: string; key: string }) => Promise<void>) => {
      const pair = await issue();
      const at = Date.now();
      await write(pair);
      const served = await pollUntil(
        () => servedSerial(port, ca.certPem).catch(() => ''),
        (serial) => serial === pair.serial,
        30_000,
        100,
      );
      expect(served, `${how}: the new certificate is not served`).toBe(pair.serial);
      switches.push(`${how} served after ${Date.now() - at} ms`);
      await sleep(1500);
    };
    await replace('atomic ..data swap 1', publishAtomically);
    await replace('in-place rewrite, certificate then key', async (pair) => {
      await writeFile(join(certDir, 'tls.crt'), pair.cert);
      await sleep(50);
      await writeFile(join(certDir, 'tls.key'), pair.key);
    });
    await replace('atomic ..data swap 2', publishAtomically);

    running = false;
    await Promise.all(workers);
    fresh.destroy();
    kept.destroy();
    console.log(
      `[faults] webhook certificate replaced 3 times: ${switches.join('; ')}; admissions ${JSON.stringify(counts)}, ${failures.length} failed`,
    );
    expect(failures).toEqual([]);
    expect(counts.apiserver).toBeGreaterThan(20);
    expect(counts.fresh).toBeGreaterThan(20);
    expect(counts.keptAlive).toBeGreaterThan(20);
    // The same process served throughout.
    expect(webhook!.child.exitCode).toBeNull();
  });
});
