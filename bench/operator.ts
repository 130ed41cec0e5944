// Starting the real `entra-access run` process for the benchmarks and the reliability suite:
// a serving certificate for 127.0.0.1 in its --cert-dir, free ports, the harness's kubeconfig
// (and, with the controller role, the operator's workload identity), then waiting for /readyz.
// Also small helpers to read its /metrics and its memory.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import type { HarnessInfo } from '../test/harness/harness.ts';
import { createCertificateAuthority, issueCertificate } from '../test/harness/pki.ts';
import { freePort } from '../test/harness/ports.ts';
import { type ManagedProcess, startProcess } from '../test/harness/processes.ts';
import { MAIN_SCRIPT, operatorArgs, operatorEnv, writeOperatorToken } from '../test/harness/scenario.ts';

/** The Node flags of the image's ENTRYPOINT (Dockerfile), so the benchmark measures what ships. */
export const IMAGE_NODE_FLAGS = ['--max-semi-space-size=16'];

export interface ServingFiles {
  certDir: string;
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** A fresh CA and a serving certificate for 127.0.0.1/localhost, written under `dir`. */
export async function servingCertificate(dir: string): Promise<ServingFiles> {
  const ca = await createCertificateAuthority('entra-access bench CA');
  const leaf = await issueCertificate(ca, {
    commonName: 'entra-access-webhook',
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  const certDir = join(dir, 'certs');
  await mkdir(certDir, { recursive: true });
  const files = {
    certDir,
    certFile: join(certDir, 'tls.crt'),
    keyFile: join(certDir, 'tls.key'),
    caFile: join(dir, 'webhook-ca.crt'),
  };
  await writeFile(files.keyFile, leaf.keyPem, { mode: 0o600 });
  await writeFile(files.certFile, leaf.certPem);
  await writeFile(files.caFile, ca.certPem);
  return files;
}

export interface EntraAccessProcess {
  proc: ManagedProcess;
  pid: number;
  webhookUrl: (path: string) => string;
  metricsUrl: string;
  caFile: string;
  stop(): Promise<void>;
}

export interface EntraAccessOptions {
  name: string;
  dir: string;
  /** `webhook`, `controller` or both. */
  roles: Array<'webhook' | 'controller'>;
  injectionMode?: 'label' | 'inject';
  /** Further flags, e.g. --resync-period=30. */
  args?: string[];
  /** Node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  clusterName?: string;
  logLevel?: string;
  /** The script node runs: src/main.ts (default) or a compiled main.js (see compiledMain). */
  entry?: string;
  kubeConfig?: k8s.KubeConfig;
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** `node src/main.ts run …` with the asked roles; resolves once /readyz answers 200. */
export async function startEntraAccess(
  info: HarnessInfo,
  options: EntraAccessOptions,
): Promise<EntraAccessProcess> {
  const serving = await servingCertificate(options.dir);
  const [webhookPort, metricsPort, healthPort] = [await freePort(), await freePort(), await freePort()];
  const withController = options.roles.includes('controller');
  let env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    KUBECONFIG: info.kubernetes.kubeconfigPath,
    NODE_EXTRA_CA_CERTS: info.caFile,
  };
  if (withController) {
    if (!options.kubeConfig) throw new Error('the controller role needs kubeConfig (for the operator token)');
    env = operatorEnv(info, await writeOperatorToken(info, options.kubeConfig, options.dir));
  }
  env.ENTRA_ACCESS_WEBHOOK_PORT = String(webhookPort);
  env.ENTRA_ACCESS_METRICS_PORT = String(metricsPort);
  env.ENTRA_ACCESS_HEALTH_PORT = String(healthPort);
  const proc = await startProcess({
    name: options.name,
    command: process.execPath,
    args: [
      ...IMAGE_NODE_FLAGS,
      ...(options.nodeArgs ?? []),
      options.entry ?? MAIN_SCRIPT,
      'run',
      ...options.roles.map((role) => `--${role}`),
      ...operatorArgs(info, options.clusterName ?? 'bench'),
      '--bind-address=127.0.0.1',
      `--cert-dir=${serving.certDir}`,
      `--injection-mode=${options.injectionMode ?? 'label'}`,
      `--log-level=${options.logLevel ?? 'info'}`,
      ...(withController ? ['--leader-elect=false'] : []),
      ...(options.args ?? []),
    ],
    env,
    logDir: options.dir,
    readyWhen: (output) => output.includes('starting entra-access'),
    timeoutMs: 30_000,
  });
  try {
    await until(
      async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200,
      120_000,
      `${options.name} /readyz`,
    );
  } catch (error) {
    await proc.stop();
    throw new Error(`${(error as Error).message}\n${proc.tail()}`);
  }
  return {
    proc,
    pid: proc.child.pid ?? 0,
    webhookUrl: (path) => `https://127.0.0.1:${webhookPort}${path}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    caFile: serving.caFile,
    stop: () => proc.stop(10_000),
  };
}

/** One HTTPS POST (its own connection), for checking a sample answer before the load. */
export function postOnce(
  url: string,
  body: string,
  caFile: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', ca: readFileSync(caFile), headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Samples of a Prometheus text exposition: `name{labels}` → value. */
export async function scrape(metricsUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** Sum of every sample of `name` whose labels contain all of `labels` (e.g. 'result="success"'). */
export function sumOf(samples: Map<string, number>, name: string, ...labels: string[]): number {
  let total = 0;
  for (const [key, value] of samples) {
    const bare = key.split('{')[0];
    if (bare === name && labels.every((label) => key.includes(label))) total += value;
  }
  return total;
}

/** VmRSS and VmHWM of a process in bytes, from /proc. */
export function procMemory(pid: number): { rss: number; peakRss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peakRss: kb('VmHWM') };
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 (1-based) of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const REPO = new URL('..', import.meta.url).pathname;

/**
 * Compiles src/ as the image does (tsc -p tsconfig.build.json) into bench/.build and returns its
 * main.js: the benchmarks measure the JavaScript that ships, not Node's on-the-fly type stripping
 * of src/*.ts (which adds its own compile time and memory).
 */
export function compiledMain(): string {
  const outDir = join(REPO, 'bench', '.build');
  const main = join(outDir, 'src', 'main.js');
  const tsc = join(REPO, 'node_modules/typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', join(REPO, 'tsconfig.build.json'), '--outDir', outDir], {
      stdio: 'inherit',
    });
  } catch (error) {
    // tsc still emits on type errors (someone's work in progress): measure what it emitted, but say so.
    if (!existsSync(main)) throw error;
    process.stderr.write('[bench] warning: tsc reported type errors; measuring the JavaScript it emitted\n');
  }
  return main;
}
