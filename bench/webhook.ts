// Scenario 1, the webhook: the real `entra-access run --webhook` process, caches warm, driven over
// HTTPS keep-alive by autocannon in another process with the realistic pod AdmissionReview.
// Fixed rates, then the highest rate sustained with p99 under a bound, in both injection modes,
// and the same search against a bare node:https server answering a fixed body (the ceiling).
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { POD_WEBHOOK_PATH } from '../src/api/constants.ts';
import type { HarnessInfo } from '../test/harness/harness.ts';
import {
  BENCH_SA_ANNOTATIONS,
  BENCH_SERVICE_ACCOUNT,
  benchAdmissionReview,
  checkAdmissionAnswer,
} from './admission-review.ts';
import {
  connectionsFor,
  type LoadResult,
  runLoad,
  type SearchResult,
  searchMaxRate,
} from './load-generator.ts';
import {
  type EntraAccessProcess,
  postOnce,
  procCpuSeconds,
  procMemory,
  servingCertificate,
  startEntraAccess,
} from './operator.ts';

export interface WebhookParams {
  rates: number[];
  fixedSec: number;
  warmupSec: number;
  searchStepSec: number;
  searchStart: number;
  searchFactor: number;
  searchMax: number;
  p99BoundMs: number;
  modes: Array<'label' | 'inject'>;
  /** The script the webhook process runs (bench/operator.ts compiledMain), default src/main.ts. */
  entry?: string;
  /** Write a .cpuprofile of the webhook process under this directory (BENCH_CPU_PROF). */
  cpuProfDir?: string;
}

export interface ModeResult {
  mode: 'label' | 'inject' | 'bare';
  sample: { status: number; ok: boolean; why?: string; responseBytes: number };
  fixed: LoadResult[];
  search: SearchResult;
  /** No rate limit, 32 connections: the most the server answers, whatever the latency. */
  saturated: LoadResult;
  /** CPU milliseconds the server process used per admission during the fixed-rate runs. */
  cpuMsPerAdmission?: number;
  /** The server process's RSS (and peak) after all its runs. */
  rssBytes?: number;
  peakRssBytes?: number;
}

export interface WebhookResults {
  requestBytes: number;
  modes: ModeResult[];
  /** Our max sustained rate (p99 under the bound) / the bare server's, per mode. */
  ratioToBare: Record<string, number>;
  /** Our saturated throughput / the bare server's, per mode (less sensitive to a noisy machine). */
  saturatedRatioToBare: Record<string, number>;
}

/** An opted-in namespace with the enabled ServiceAccount the bench pod runs as. */
export async function prepareWebhookNamespace(kubeConfig: k8s.KubeConfig, namespace: string): Promise<void> {
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({
    body: {
      metadata: {
        name: namespace,
        annotations: { 'entra-access.io/workload-identity': 'enabled' },
        labels: { 'entra-access.io/workload-identity': 'enabled' },
      },
    },
  });
  await core.createNamespacedServiceAccount({
    namespace,
    body: { metadata: { name: BENCH_SERVICE_ACCOUNT, annotations: BENCH_SA_ANNOTATIONS } },
  });
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

const describe = (r: LoadResult) =>
  `${r.rate ?? 'max'}/s → ${r.achieved}/s p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} max ${r.latencyMs.max} ms, non2xx ${r.non2xx} errors ${r.errors} mismatches ${r.mismatches}`;

async function measure(
  mode: ModeResult['mode'],
  url: string,
  caFile: string,
  body: string,
  namespace: string,
  params: WebhookParams,
  pid: number,
): Promise<ModeResult> {
  const sample = await postOnce(url, body, caFile);
  const why =
    mode === 'bare'
      ? undefined
      : sample.status !== 200
        ? `HTTP ${sample.status}`
        : checkAdmissionAnswer(sample.body, namespace, mode);
  if (why) throw new Error(`the ${mode} webhook answered wrongly (${why}): ${sample.body.slice(0, 500)}`);
  // Warm-up (JIT, caches), then fixed rates. Every response must equal the checked sample.
  const base = { url, caFile, body, expectBody: sample.body };
  await runLoad({ ...base, rate: params.rates[0] ?? 500, connections: 8, durationSec: params.warmupSec });
  const fixed: LoadResult[] = [];
  const cpuBefore = procCpuSeconds(pid);
  let admissions = 0;
  for (const rate of params.rates) {
    const result = await runLoad({
      ...base,
      rate,
      connections: connectionsFor(rate),
      durationSec: params.fixedSec,
    });
    admissions += result.responses;
    log(`${mode}: ${describe(result)}`);
    fixed.push(result);
  }
  const cpuMsPerAdmission =
    admissions > 0 ? ((procCpuSeconds(pid) - cpuBefore) * 1000) / admissions : undefined;
  const search = await searchMaxRate({
    base,
    p99BoundMs: params.p99BoundMs,
    startRate: params.searchStart,
    factor: params.searchFactor,
    maxRate: params.searchMax,
    stepSec: params.searchStepSec,
    onStep: (result, ok) => log(`${mode} search: ${describe(result)} ${ok ? 'sustained' : 'NOT sustained'}`),
  });
  log(`${mode}: max sustained ${search.maxRate}/s with p99 < ${params.p99BoundMs} ms`);
  const saturated = await runLoad({ ...base, connections: 32, durationSec: params.searchStepSec });
  log(`${mode} saturated: ${describe(saturated)}`);
  const memory = procMemory(pid);
  return {
    rssBytes: memory.rss,
    peakRssBytes: memory.peakRss,
    mode,
    sample: { status: sample.status, ok: true, responseBytes: Buffer.byteLength(sample.body) },
    fixed,
    search,
    saturated,
    ...(cpuMsPerAdmission !== undefined
      ? { cpuMsPerAdmission: Math.round(cpuMsPerAdmission * 1000) / 1000 }
      : {}),
  };
}

/** The bare server, answering `response` to everything. */
async function startBare(
  dir: string,
  response: string,
): Promise<{ port: number; pid: number; caFile: string; stop(): void }> {
  const serving = await servingCertificate(join(dir, 'bare'));
  const responseFile = join(dir, 'bare-response.json');
  await writeFile(responseFile, response);
  const child = spawn(
    process.execPath,
    [new URL('./bare-server.ts', import.meta.url).pathname, JSON.stringify({ ...serving, responseFile })],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const match = /listening on (\d+)/.exec(chunk.toString());
      if (match) resolve(Number(match[1]));
    });
    child.on('exit', (code) => reject(new Error(`bare server exited ${code}`)));
  });
  return { port, pid: child.pid ?? 0, caFile: serving.caFile, stop: () => child.kill('SIGTERM') };
}

export async function benchWebhook(
  info: HarnessInfo,
  kubeConfig: k8s.KubeConfig,
  dir: string,
  params: WebhookParams,
): Promise<WebhookResults> {
  const namespace = `bench-webhook-${Math.random().toString(36).slice(2, 7)}`;
  await prepareWebhookNamespace(kubeConfig, namespace);
  const body = benchAdmissionReview(namespace);
  const modes: ModeResult[] = [];
  let labelResponse = '';
  for (const mode of params.modes) {
    let webhook: EntraAccessProcess | undefined;
    try {
      webhook = await startEntraAccess(info, {
        name: `webhook-${mode}`,
        dir: join(dir, `webhook-${mode}`),
        roles: ['webhook'],
        injectionMode: mode,
        ...(params.entry ? { entry: params.entry } : {}),
        ...(params.cpuProfDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${params.cpuProfDir}`] } : {}),
      });
      const result = await measure(
        mode,
        webhook.webhookUrl(POD_WEBHOOK_PATH),
        webhook.caFile,
        body,
        namespace,
        params,
        webhook.pid,
      );
      if (mode === 'label')
        labelResponse = (await postOnce(webhook.webhookUrl(POD_WEBHOOK_PATH), body, webhook.caFile)).body;
      modes.push(result);
    } finally {
      await webhook?.stop();
    }
  }
  // The ceiling answers with what our webhook answers (label mode's patch), byte for byte.
  const bare = await startBare(
    dir,
    labelResponse ||
      '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"x","allowed":true}}',
  );
  try {
    modes.push(
      await measure(
        'bare',
        `https://127.0.0.1:${bare.port}${POD_WEBHOOK_PATH}`,
        bare.caFile,
        body,
        namespace,
        params,
        bare.pid,
      ),
    );
  } finally {
    bare.stop();
  }
  const ceiling = modes.find((m) => m.mode === 'bare');
  const ratioToBare: Record<string, number> = {};
  const saturatedRatioToBare: Record<string, number> = {};
  for (const m of modes) {
    if (m.mode === 'bare' || !ceiling) continue;
    if (ceiling.search.maxRate > 0)
      ratioToBare[m.mode] = Math.round((m.search.maxRate / ceiling.search.maxRate) * 100) / 100;
    if (ceiling.saturated.achieved > 0) {
      saturatedRatioToBare[m.mode] =
        Math.round((m.saturated.achieved / ceiling.saturated.achieved) * 100) / 100;
    }
  }
  return { requestBytes: Buffer.byteLength(body), modes, ratioToBare, saturatedRatioToBare };
}
