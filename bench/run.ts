// `npm run bench`: starts the harness (real etcd + kube-apiserver, PostgreSQL, the Azure
// emulator), runs the scenarios (BENCH_SCENARIOS, default webhook,scale) at BENCH_SIZE (quick or
// default), writes bench/results.json and refreshes the table in docs/benchmarks.md.
// See bench/README.md for every knob.
import { mkdirSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { startHarness } from '../test/harness/harness.ts';
import { makeTempDir, removeTempDir } from '../test/harness/processes.ts';
import { compiledMain } from './operator.ts';
import { writeReport } from './report.ts';
import { benchScale, type ScaleResults } from './scale.ts';
import { benchParams } from './sizes.ts';
import { benchWebhook, type WebhookResults } from './webhook.ts';

export interface Machine {
  cores: number;
  cpuModel: string;
  node: string;
  memoryBytes: number;
  kubernetes: string;
  postgres: string;
}

export interface BenchResults {
  date: string;
  size: string;
  entry: string;
  durationSec: number;
  machine: Machine;
  /** 1-minute load average when each scenario started and ended (the machine may be shared). */
  loadAverage: Record<string, number[]>;
  webhook?: WebhookResults;
  scale?: ScaleResults;
}

const params = benchParams();
const started = Date.now();
const load = () => loadavg().map((n) => Math.round(n * 100) / 100);
process.stderr.write(
  `[bench] size ${params.size}, scenarios ${params.scenarios.join(',')}, load ${load().join(' ')}\n`,
);
if (params.entry === 'compiled') {
  const main = compiledMain();
  params.webhook.entry = main;
  params.scale.entry = main;
}
const harness = await startHarness({ installCrds: true });
const keep = process.env.BENCH_KEEP_DIR;
if (keep) mkdirSync(keep, { recursive: true });
// The operator's logs and CPU profiles land here; BENCH_KEEP_DIR keeps them.
const dir = keep ?? makeTempDir('bench');
const results: BenchResults = {
  date: new Date().toISOString(),
  size: params.size,
  entry: params.entry,
  durationSec: 0,
  machine: {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    memoryBytes: totalmem(),
    kubernetes: harness.info.versions.kubernetes,
    postgres: harness.info.versions.postgres,
  },
  loadAverage: { start: load() },
};
let failed = false;
try {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(harness.info.kubernetes.kubeconfigPath);
  if (params.scenarios.includes('webhook')) {
    results.loadAverage.webhookStart = load();
    results.webhook = await benchWebhook(harness.info, kubeConfig, dir, params.webhook);
    results.loadAverage.webhookEnd = load();
  }
  if (params.scenarios.includes('scale')) {
    results.loadAverage.scaleStart = load();
    results.scale = await benchScale(harness.info, kubeConfig, dir, params.scale);
    results.loadAverage.scaleEnd = load();
  }
} catch (error) {
  failed = true;
  process.stderr.write(`[bench] failed: ${(error as Error).stack ?? String(error)}\n`);
} finally {
  results.durationSec = Math.round((Date.now() - started) / 1000);
  await harness.stop();
  if (keep) process.stderr.write(`[bench] kept ${dir}\n`);
  else removeTempDir(dir);
}
if (!failed) {
  const where = await writeReport(results);
  process.stderr.write(`[bench] wrote ${where.join(' and ')} in ${results.durationSec} s\n`);
}
process.exit(failed ? 1 : 0);
