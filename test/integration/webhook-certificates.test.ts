// Self-managed webhook certificates (--cert-mode=self) against the real apiserver: replicas
// racing on the Secret end with one Secret and one pair on every disk; the webhook started in
// mode self gets its CA bundle into a real MutatingWebhookConfiguration; and a forced rotation
// while admissions run through the apiserver fails none of them, leaves the new CA bundle in
// place and changes the served certificate without a restart.
import { X509Certificate } from 'node:crypto';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { readServingPair, writeServingFiles } from '../../src/webhook/certificates/cert-dir.ts';
import { keyMatches, splitPemCertificates } from '../../src/webhook/certificates/inspect.ts';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhook/certificates/issue.ts';
import {
  CertificateManager,
  type CertificateManagerOptions,
  type SyncResult,
} from '../../src/webhook/certificates/manager.ts';
import { serviceCommonName, serviceDnsNames } from '../../src/webhook/certificates/names.ts';
import { GENERATION_ANNOTATION } from '../../src/webhook/certificates/secret.ts';
import { startWebhookComponent, type WebhookComponent } from '../../src/webhook/component.ts';
import { CertificateWatcher } from '../../src/webhook/tls.ts';
import { adminKubeConfig, harnessInfo, poller, pollFor, uniqueName } from '../harness/context.ts';
import { appPod, podWebhook } from '../harness/kube.ts';
import { freePort } from '../harness/ports.ts';
import { makeTempDir, removeTempDir, startProcess } from '../harness/processes.ts';

const harness = harnessInfo();
const main = new URL('../../src/main.ts', import.meta.url).pathname;
const run = uniqueName('whc');
const DAY = 86_400_000;
const SERVICE = 'entra-access-webhook';
const CLIENT_ID = '11111111-2222-3333-4444-555555555555';

const until = poller({ timeoutMs: 20_000 });

/**
 * The serial number of the certificate served on 127.0.0.1:port, verified against `ca`; `servername`
 * checks the certificate names that DNS name instead of 127.0.0.1.
 */
function servedSerial(port: number, ca: string, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, ...(servername ? { servername } : {}) }, () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber ?? '';
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;
const fingerprints = (bundle: string) =>
  splitPemCertificates(bundle).map((pem) => new X509Certificate(pem).fingerprint256);
const decode = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString('utf8');

describe.skipIf(!harness)('self-managed webhook certificates', () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let admission: k8s.AdmissionregistrationV1Api;
  let dir: string;
  const releaseNamespace = `${run}-system`;
  const workloadNamespace = `${run}-apps`;
  const configurationName = `aks-entra-access-${run}`;
  const managers: CertificateManager[] = [];
  let role: WebhookComponent | undefined;

  function manager(name: string, overrides: Partial<CertificateManagerOptions>): CertificateManager {
    const created = new CertificateManager({
      kubeConfig: kc,
      // The racing replicas use a configuration that does not exist: quiet its warning.
      logger: createLogger('error'),
      namespace: releaseNamespace,
      secretName: `${name}-tls`,
      webhookConfigurationName: `${configurationName}-absent`,
      certDir: join(dir, name),
      commonName: serviceCommonName(SERVICE, releaseNamespace),
      dnsNames: serviceDnsNames(SERVICE, releaseNamespace),
      caValidityMs: 365 * DAY,
      certValidityMs: 90 * DAY,
      renewBeforeMs: 30 * DAY,
      watch: false,
      ...overrides,
    });
    managers.push(created);
    return created;
  }

  async function readSecret(name: string): Promise<k8s.V1Secret> {
    return core.readNamespacedSecret({ namespace: releaseNamespace, name });
  }

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    core = kc.makeApiClient(k8s.CoreV1Api);
    admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    dir = makeTempDir('webhook-certificates');
    await core.createNamespace({ body: { metadata: { name: releaseNamespace } } });
  });

  afterAll(async () => {
    await role?.stop();
    for (const m of managers) await m.stop();
    await admission?.deleteMutatingWebhookConfiguration({ name: configurationName }).catch(() => {});
    for (const name of [workloadNamespace, releaseNamespace])
      await core?.deleteNamespace({ name }).catch(() => {});
    if (dir) removeTempDir(dir);
  });

  it('has replicas racing on an absent Secret end with one Secret and the same pair on every disk', async () => {
    const replicas = ['race-a', 'race-b', 'race-c'].map((name, i) =>
      manager(`race-${i}`, { secretName: 'race-tls', certDir: join(dir, name) }),
    );
    const results = await Promise.all(replicas.map((m) => m.sync()));

    // Exactly one replica created the Secret; the others lost the race or read the winner's.
    expect(results.filter((r) => r.secret === 'created')).toHaveLength(1);
    expect(results.filter((r) => r.secret === 'unchanged')).toHaveLength(2);
    expect(new Set(results.map((r) => r.servingSerial)).size).toBe(1);
    const secret = await readSecret('race-tls');
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(secret.metadata?.annotations?.[GENERATION_ANNOTATION]).toBe('1');
    const tlsCrt = decode(secret.data?.['tls.crt']);
    for (const name of ['race-a', 'race-b', 'race-c']) {
      const onDisk = await readServingPair(join(dir, name));
      expect(onDisk?.cert).toBe(tlsCrt);
      expect(onDisk?.key).toBe(decode(secret.data?.['tls.key']));
      expect(onDisk?.ca).toBe(decode(secret.data?.['ca.crt']));
    }
    expect(serialOf(tlsCrt)).toBe(results[0]?.servingSerial);
    const listed = await core.listNamespacedSecret({ namespace: releaseNamespace });
    expect(listed.items.filter((s) => s.metadata?.name === 'race-tls')).toHaveLength(1);
  });

  it('has replicas that all see a certificate due for renewal write it once, and all take that one', async () => {
    const first = await manager('due-0', { secretName: 'due-tls' }).sync();
    // Eighty days on, every replica finds the 90-day certificate within 30 days of its end at once.
    const later = () => new Date(Date.now() + 80 * DAY);
    const replicas = [1, 2, 3].map((i) => manager(`due-${i}`, { secretName: 'due-tls', now: later }));
    const results: SyncResult[] = await Promise.all(replicas.map((m) => m.sync()));

    expect(results.filter((r) => r.secret === 'replaced')).toHaveLength(1);
    expect(results.every((r) => r.generation === 2)).toBe(true);
    const secret = await readSecret('due-tls');
    expect(secret.metadata?.annotations?.[GENERATION_ANNOTATION]).toBe('2');
    const tlsCrt = decode(secret.data?.['tls.crt']);
    expect(serialOf(tlsCrt)).not.toBe(first.servingSerial);
    for (const i of [1, 2, 3]) expect((await readServingPair(join(dir, `due-${i}`)))?.cert).toBe(tlsCrt);
    // A serving renewal keeps the CA: the bundle is unchanged.
    expect(fingerprints(decode(secret.data?.['ca.crt']))).toHaveLength(1);
  });

  it('swaps pairs in the cert dir so that the CertificateWatcher never loads half of one', async () => {
    const target = join(dir, 'atomic');
    const ca = await createCertificateAuthority({ commonName: 'atomic', now: new Date(), validityMs: DAY });
    const pairs = await Promise.all(
      Array.from({ length: 30 }, () =>
        issueServingCertificate({
          ca,
          commonName: 'x',
          dnsNames: ['x'],
          ipAddresses: [],
          now: new Date(),
          validityMs: DAY,
        }),
      ),
    );
    const logs: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
    await writeServingFiles(target, {
      'tls.crt': pairs[0]!.certPem,
      'tls.key': pairs[0]!.keyPem,
      'ca.crt': '',
    });
    const watcher = new CertificateWatcher(target, logger);
    const loaded: string[] = [];
    watcher.onChange((pair) => loaded.push(pair.cert.toString()));
    await watcher.start(20);
    // A reader resolving `..data` once, as the watcher does, checks every state it can observe.
    let writing = true;
    let reads = 0;
    let mixed = 0;
    const reader = (async () => {
      while (writing) {
        const base = await realpath(join(target, '..data')).catch(() => undefined);
        if (!base) continue;
        const [cert, key] = await Promise.all([
          readFile(join(base, 'tls.crt'), 'utf8'),
          readFile(join(base, 'tls.key'), 'utf8'),
        ]).catch(() => [undefined, undefined]);
        if (cert === undefined) continue; // that version was removed after the swap: read again
        reads += 1;
        if (!keyMatches(cert, key)) mixed += 1;
      }
    })();
    for (const pair of pairs.slice(1)) {
      await writeServingFiles(target, { 'tls.crt': pair.certPem, 'tls.key': pair.keyPem, 'ca.crt': '' });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    writing = false;
    await reader;
    const last = pairs.at(-1)!.certPem;
    await until(
      async () => watcher.current?.cert.toString(),
      (cert) => cert === last,
      5000,
    );
    watcher.stop();

    expect(reads).toBeGreaterThan(0);
    expect(mixed).toBe(0);
    expect(watcher.current?.cert.toString()).toBe(last);
    expect(loaded.length).toBeGreaterThan(1);
    expect(logs.filter((line) => line.includes('ignoring an invalid serving certificate'))).toEqual([]);
    // Only the current version directory is left, with its private key.
    const versions = (await readdir(target)).filter((name) => name.startsWith('..') && name !== '..data');
    expect(versions).toHaveLength(1);
  });

  it("runs as `entra-access run` with ENTRA_ACCESS_CERT_MODE=self: ready, serving the Secret's pair", async () => {
    const ports = { webhook: await freePort(), health: await freePort() };
    const proc = await startProcess({
      name: 'entra-access-self',
      command: process.execPath,
      args: [
        main,
        'run',
        '--webhook',
        '--bind-address=127.0.0.1',
        `--cert-dir=${join(dir, 'process')}`,
        '--injection-mode=label',
        '--metrics-port=0',
      ],
      env: {
        ...process.env,
        KUBECONFIG: harness!.kubernetes.kubeconfigPath,
        ENTRA_ACCESS_CERT_MODE: 'self',
        ENTRA_ACCESS_NAMESPACE: releaseNamespace,
        ENTRA_ACCESS_CERT_SECRET_NAME: 'process-tls',
        ENTRA_ACCESS_WEBHOOK_CONFIGURATION_NAME: `${configurationName}-absent`,
        ENTRA_ACCESS_WEBHOOK_PORT: String(ports.webhook),
        ENTRA_ACCESS_HEALTH_PORT: String(ports.health),
      },
      logDir: dir,
      readyWhen: (out) => out.includes('starting entra-access'),
    });
    try {
      const ready = await until(
        () =>
          fetch(`http://127.0.0.1:${ports.health}/readyz`)
            .then((res) => res.status)
            .catch(() => 0),
        (status) => status === 200,
      );
      expect(ready, proc.tail()).toBe(200);
      const secret = await readSecret('process-tls');
      const tlsCrt = decode(secret.data?.['tls.crt']);
      expect(
        await servedSerial(
          ports.webhook,
          decode(secret.data?.['ca.crt']),
          `${SERVICE}.${releaseNamespace}.svc`,
        ),
      ).toBe(serialOf(tlsCrt));
      expect(proc.tail()).toContain('webhook certificates renewed');
    } finally {
      await proc.stop();
    }
  });

  describe('the webhook in mode self behind a real MutatingWebhookConfiguration', () => {
    let port: number;
    const secretName = `${run}-webhook-tls`;

    async function bundleInConfiguration(): Promise<string[]> {
      const configuration = await admission.readMutatingWebhookConfiguration({ name: configurationName });
      return (configuration.webhooks ?? []).map((w) => decode(w.clientConfig.caBundle));
    }

    beforeAll(async () => {
      port = await freePort();
      // Registered before the webhook starts, without a caBundle: the webhook's first pass sets it.
      await admission.createMutatingWebhookConfiguration({
        body: {
          metadata: { name: configurationName },
          webhooks: [
            // Fail: an admission that meets a certificate the apiserver cannot verify fails the create.
            podWebhook({
              baseUrl: `https://127.0.0.1:${port}`,
              namespaceSelector: { matchLabels: { 'entra-access-certificates-test': run } },
            }),
          ],
        },
      });
      const config = parseConfig(
        [
          '--webhook',
          `--kubeconfig=${harness!.kubernetes.kubeconfigPath}`,
          `--namespace=${releaseNamespace}`,
          '--cert-mode=self',
          `--cert-secret-name=${secretName}`,
          `--webhook-configuration-name=${configurationName}`,
          `--webhook-service-name=${SERVICE}`,
          `--cert-dir=${join(dir, 'webhook')}`,
          `--webhook-port=${port}`,
          '--bind-address=127.0.0.1',
          '--injection-mode=label',
          '--metrics-port=0',
          '--health-port=0',
          '--log-level=warn',
        ],
        {},
      );
      role = await startWebhookComponent(config, {
        kubeConfig: kc,
        logger: createLogger('warn'),
        metrics: createMetrics(),
        // The configuration reaches the webhook by URL at 127.0.0.1, so the certificate names it.
        certificateOptions: { ipAddresses: ['127.0.0.1'] },
      });
      await pollFor(() => role!.readiness.every((check) => check.ready()), 20_000);
      await core.createNamespace({
        body: {
          metadata: {
            name: workloadNamespace,
            labels: { 'entra-access-certificates-test': run },
            annotations: { 'entra-access.io/workload-identity': 'enabled' },
          },
        },
      });
      await core.createNamespacedServiceAccount({
        namespace: workloadNamespace,
        body: {
          metadata: { name: 'orders-api', annotations: { 'azure.workload.identity/client-id': CLIENT_ID } },
        },
      });
    });

    /** One admission through the apiserver: a dry-run pod the webhook must label. */
    async function admit(): Promise<void> {
      const pod = await core.createNamespacedPod({
        namespace: workloadNamespace,
        dryRun: 'All',
        body: appPod('orders-api', { generateName: 'load-' }),
      });
      if (pod.metadata?.labels?.['azure.workload.identity/use'] !== 'true') {
        throw new Error('admitted without the webhook: the label is missing');
      }
    }

    it('creates the Secret, serves its certificate and patches its CA bundle into the configuration', async () => {
      const secret = await readSecret(secretName);
      const caCrt = decode(secret.data?.['ca.crt']);
      expect(secret.type).toBe('kubernetes.io/tls');
      expect(await bundleInConfiguration()).toEqual([caCrt]);
      expect(await servedSerial(port, caCrt)).toBe(serialOf(decode(secret.data?.['tls.crt'])));
      const served = new X509Certificate(decode(secret.data?.['tls.crt']));
      expect(served.subjectAltName).toBe(
        [...serviceDnsNames(SERVICE, releaseNamespace).map((n) => `DNS:${n}`), 'IP Address:127.0.0.1'].join(
          ', ',
        ),
      );
      await pollFor(() => admit().then(() => true), 20_000);
    });

    it('rotates the CA and the serving certificate while admissions run, failing none', async () => {
      const before = await readSecret(secretName);
      const oldCa = splitPemCertificates(decode(before.data?.['ca.crt']))[0]!;
      const oldSerial = serialOf(decode(before.data?.['tls.crt']));
      const startPort = role!.port;

      // Admissions keep flowing through the apiserver the whole time, four at once.
      let running = true;
      let succeeded = 0;
      let succeededAfterSwitch = 0;
      let switched = false;
      const failures: string[] = [];
      const workers = Array.from({ length: 4 }, async () => {
        while (running) {
          try {
            await admit();
            succeeded += 1;
            if (switched) succeededAfterSwitch += 1;
          } catch (error) {
            const body = (error as { body?: unknown }).body;
            failures.push(typeof body === 'string' ? body : (error as Error).message);
          }
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 1000));

      // Another replica forces a CA rotation. The webhook learns of it from its Secret watch.
      const replica = manager('replica-b', {
        secretName,
        webhookConfigurationName: configurationName,
        ipAddresses: ['127.0.0.1'],
      });
      const rotation = await replica.renew('ca');
      expect(rotation).toMatchObject({ plan: 'rotate-ca', secret: 'replaced' });
      const after = await readSecret(secretName);
      const newBundle = decode(after.data?.['ca.crt']);
      const newSerial = serialOf(decode(after.data?.['tls.crt']));
      expect(newSerial).not.toBe(oldSerial);

      // (The probe trusts the new bundle only, so it fails until the new certificate is served.)
      const served = await until(
        () => servedSerial(port, newBundle).catch(() => ''),
        (serial) => serial === newSerial,
      );
      expect(served).toBe(newSerial);
      switched = true;

      // Then the webhook's own manager renews its serving certificate under the new CA.
      const renewal = await role!.certificateManager!.renew('serving');
      expect(renewal).toMatchObject({ plan: 'issue-serving', secret: 'replaced', files: 'written' });
      // Written to disk; the watcher swaps it in on the file event that follows.
      expect(
        await until(
          () => servedSerial(port, newBundle),
          (serial) => serial === renewal.servingSerial,
        ),
      ).toBe(renewal.servingSerial);

      await new Promise((resolve) => setTimeout(resolve, 1000));
      running = false;
      await Promise.all(workers);

      expect(failures).toEqual([]);
      expect(succeeded).toBeGreaterThan(50);
      expect(succeededAfterSwitch).toBeGreaterThan(10);
      // The new CA bundle is in place: the new CA first, the old one kept while its certificate lives.
      const bundle = await bundleInConfiguration();
      expect(bundle).toEqual([decode((await readSecret(secretName)).data?.['ca.crt'])]);
      const trusted = fingerprints(bundle[0]!);
      expect(trusted).toHaveLength(2);
      expect(trusted[1]).toBe(new X509Certificate(oldCa).fingerprint256);
      expect(trusted[0]).not.toBe(trusted[1]);
      expect(trusted[0]).toBe(fingerprints(newBundle)[0]);
      // No restart: the same server, on the same port, serves the new certificate.
      expect(role!.port).toBe(startPort);
      expect(role!.readiness.every((check) => check.ready())).toBe(true);
      console.info(
        `rotation under load: ${succeeded} admissions, ${succeededAfterSwitch} after the switch, ${failures.length} failed`,
      );
    });

    it('puts the CA bundle back at once when something resets it', async () => {
      const configuration = await admission.readMutatingWebhookConfiguration({ name: configurationName });
      await admission.patchMutatingWebhookConfiguration(
        {
          name: configurationName,
          body: [{ op: 'remove', path: '/webhooks/0/clientConfig/caBundle' }],
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      );
      const restored = await until(
        () => bundleInConfiguration(),
        (bundles) => bundles[0] !== '',
        10_000,
      );
      expect(restored).toEqual([decode(configuration.webhooks?.[0]?.clientConfig.caBundle)]);
      await admit();
    });
  });
});
