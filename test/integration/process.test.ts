// The entra-access process as users run it: `entra-access run` in a child process against the
// harness apiserver. Health and readiness (gated on the certificate and the caches), metrics,
// certificate reload without a restart, bad requests answered 4xx with a reason, config errors;
// and, without the harness, the commands' help and an unknown command.
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harnessInfo } from '../harness/context.ts';
import { createCertificateAuthority, issueCertificate, type KeyAndCert } from '../harness/pki.ts';
import { freePort } from '../harness/ports.ts';
import { type ManagedProcess, makeTempDir, removeTempDir, startProcess } from '../harness/processes.ts';

const harness = harnessInfo();
const main = new URL('../../src/main.ts', import.meta.url).pathname;

async function until(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

function post(
  port: number,
  path: string,
  body: string,
  ca: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, method: 'POST', ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The serial number of the certificate the server presents right now. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: undefined }, () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber ?? '';
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

describe.skipIf(!harness)('the entra-access process', () => {
  let dir: string;
  let certDir: string;
  let ca: string;
  let issue: () => Promise<KeyAndCert>;
  let proc: ManagedProcess;
  const ports = { webhook: 0, metrics: 0, health: 0 };

  beforeAll(async () => {
    dir = makeTempDir('process-test');
    certDir = join(dir, 'certs');
    const authority = await createCertificateAuthority('process test CA');
    ca = authority.certPem;
    issue = () =>
      issueCertificate(authority, {
        commonName: 'entra-access',
        usage: 'server',
        ipAddresses: ['127.0.0.1'],
      });
    ports.webhook = await freePort();
    ports.metrics = await freePort();
    ports.health = await freePort();
    // Started with no certificate yet: it must be live but not ready.
    proc = await startProcess({
      name: 'entra-access',
      command: process.execPath,
      args: [
        main,
        'run',
        '--webhook',
        '--bind-address=127.0.0.1',
        `--cert-dir=${certDir}`,
        '--injection-mode=label',
        '--log-level=debug',
      ],
      env: {
        ...process.env,
        KUBECONFIG: harness!.kubernetes.kubeconfigPath,
        ENTRA_ACCESS_WEBHOOK_PORT: String(ports.webhook),
        ENTRA_ACCESS_METRICS_PORT: String(ports.metrics),
        ENTRA_ACCESS_HEALTH_PORT: String(ports.health),
      },
      logDir: dir,
      readyWhen: (out) => out.includes('starting entra-access'),
    });
  });

  afterAll(async () => {
    await proc?.stop();
    if (dir) removeTempDir(dir);
  });

  it('is live at once, and not ready until its serving certificate exists', async () => {
    expect(
      await until(async () => (await get(`http://127.0.0.1:${ports.health}/healthz`)).status === 200),
    ).toBe(true);
    const notReady = await get(`http://127.0.0.1:${ports.health}/readyz`);
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('webhook-certificate');

    const { mkdir } = await import('node:fs/promises');
    await mkdir(certDir, { recursive: true });
    const first = await issue();
    await writeFile(join(certDir, 'tls.key'), first.keyPem);
    await writeFile(join(certDir, 'tls.crt'), first.certPem);
    expect(
      await until(async () => (await get(`http://127.0.0.1:${ports.health}/readyz`)).status === 200),
    ).toBe(true);
    expect(await servedSerial(ports.webhook, ca)).toBe(new X509Certificate(first.certPem).serialNumber);
  });

  it('answers malformed, oversize and wrongly-kinded requests with 4xx and a reason', async () => {
    const invalidJson = await post(ports.webhook, '/mutate-v1-pod', '{not json', ca);
    expect(invalidJson.status).toBe(400);
    expect(invalidJson.body).toMatch(/JSON/i);

    const notAReview = await post(ports.webhook, '/mutate-v1-pod', JSON.stringify({ kind: 'Pod' }), ca);
    expect(notAReview.status).toBe(400);
    expect(JSON.parse(notAReview.body).error).toMatch(
      /malformed AdmissionReview: apiVersion must be admission.k8s.io\/v1/,
    );

    const wrongKind = await post(
      ports.webhook,
      '/mutate-v1-pod',
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'x',
          kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
          operation: 'CREATE',
          object: {},
        },
      }),
      ca,
    );
    expect(wrongKind.status).toBe(400);
    expect(JSON.parse(wrongKind.body).error).toMatch(/admits core\/v1 Pod objects, got apps\/v1 Deployment/);

    const huge = await post(
      ports.webhook,
      '/mutate-v1-pod',
      JSON.stringify({ pad: 'x'.repeat(4 * 1024 * 1024) }),
      ca,
    );
    expect(huge.status).toBe(413);

    const nowhere = await post(ports.webhook, '/mutate-v1-deployment', '{}', ca);
    expect(nowhere.status).toBe(404);
  });

  it('admits a pod in a namespace that is not opted in unchanged, and counts it in the metrics', async () => {
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'uid-1',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: 'default',
        object: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'i' }] } },
      },
    };
    const res = await post(ports.webhook, '/mutate-v1-pod', JSON.stringify(review), ca);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).response).toEqual({ uid: 'uid-1', allowed: true });

    const metrics = (await get(`http://127.0.0.1:${ports.metrics}/metrics`)).body;
    expect(metrics).toMatch(
      /controller_runtime_webhook_requests_total\{webhook="\/mutate-v1-pod",code="200"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /controller_runtime_webhook_requests_total\{webhook="\/mutate-v1-pod",code="400"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /controller_runtime_webhook_latency_seconds_bucket\{le="0.005",webhook="\/mutate-v1-pod"\}/,
    );
    expect(metrics).toContain('controller_runtime_webhook_requests_in_flight{webhook="/mutate-v1-pod"} 0');
    expect(metrics).toMatch(/entra_access_webhook_mutations_total\{kind="Pod",outcome="skipped"\} [1-9]/);
    expect(metrics).toMatch(/entra_access_webhook_mutations_total\{kind="Pod",outcome="error"\} [1-9]/);
  });

  it('serves a replaced certificate without restarting', async () => {
    const pid = proc.child.pid;
    const next = await issue();
    await writeFile(join(certDir, 'tls.key'), next.keyPem);
    await writeFile(join(certDir, 'tls.crt'), next.certPem);
    const wanted = new X509Certificate(next.certPem).serialNumber;
    expect(await until(async () => (await servedSerial(ports.webhook, ca)) === wanted)).toBe(true);
    expect(proc.child.pid).toBe(pid);
    expect(proc.child.exitCode).toBeNull();
  });

  it('writes JSON logs with the request fields', () => {
    const lines = proc
      .tail(500)
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const admission = lines.find((line) => line.msg === 'admission' && line.uid === 'uid-1');
    expect(admission).toMatchObject({
      level: 'debug',
      kind: 'Pod',
      namespace: 'default',
      outcome: 'skipped',
    });
    expect(lines.some((line) => line.msg === 'serving certificate reloaded')).toBe(true);
    expect(lines.find((line) => line.msg === 'starting entra-access')).toMatchObject({
      components: ['webhook'],
    });
  });

  it('stops with exit code 2 and names the flag on bad configuration', () => {
    const result = spawnSync(process.execPath, [main, 'run', '--webhook', '--webhook-port=99999'], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--webhook-port: expected an integer from 1 to 65535, got "99999"');
    const env = spawnSync(process.execPath, [main, 'run', '--webhook'], {
      encoding: 'utf8',
      env: { ...process.env, ENTRA_ACCESS_INJECTION_MODE: 'magic' },
    });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain(
      '--injection-mode (from ENTRA_ACCESS_INJECTION_MODE): expected one of auto, label, inject',
    );
  });

  it('shuts down cleanly on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        main,
        'run',
        '--webhook',
        '--bind-address=127.0.0.1',
        `--cert-dir=${certDir}`,
        `--webhook-port=${port}`,
        '--metrics-port=0',
        '--health-port=0',
      ],
      {
        env: { ...process.env, KUBECONFIG: harness!.kubernetes.kubeconfigPath },
        stdio: 'ignore',
      },
    );
    expect(await until(async () => (await servedSerial(port, ca)) !== '')).toBe(true);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe('the entra-access commands', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });

  it.each([[[]], [['--help']], [['-h']], [['help']]])(
    'prints the commands and every option group for %j',
    (args) => {
      const result = cli(...args);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('Usage: entra-access <command> [flags]');
      expect(result.stdout).toMatch(/\n {2}run +Run the operator/);
      expect(result.stdout).toContain('Option groups: common, webhook, controller.');
      for (const heading of ['Common flags (', 'Webhook flags (', 'Controller flags (']) {
        expect(result.stdout).toContain(`\n${heading}`);
      }
    },
  );

  it.each([[['run', '--help']], [['run', '-h']], [['help', 'run']], [['run', '--webhook', '--help']]])(
    "prints run's flags by option group for %j",
    (args) => {
      const result = cli(...args);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/^Usage: entra-access run \[flags\]/);
      const at = (text: string) => result.stdout.indexOf(text);
      expect(at('\nCommon flags (')).toBeLessThan(at('\n  --kubeconfig value'));
      expect(at('\n  --kubeconfig value')).toBeLessThan(at('\nWebhook flags ('));
      expect(at('\nWebhook flags (')).toBeLessThan(at('\n  --webhook-port value'));
      expect(at('\n  --webhook-port value')).toBeLessThan(at('\nController flags ('));
      expect(at('\nController flags (')).toBeLessThan(at('\n  --oidc-issuer-url value'));
    },
  );

  it.each([[['serve']], [['help', 'serve']], [['--webhook']]])(
    'stops with exit code 2 on the unknown command %j, naming the commands there are',
    (args) => {
      const result = cli(...args);
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(
        /^entra-access: unknown command "[^"]+"; the commands are "run", "help"\n$/,
      );
    },
  );

  it('stops with exit code 2 on a flag no command has', () => {
    const result = cli('run', '--no-such-flag');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(
      `Unknown option '--no-such-flag'. Run "entra-access run --help" for the flags.`,
    );
  });
});
