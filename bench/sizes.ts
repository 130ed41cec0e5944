// Scenario sizes: BENCH_SIZE=quick (a few minutes) or default (≤ 15 min on 2 cores), with single
// knobs overridable by environment variables (see bench/README.md).
import type { WebhookParams } from './webhook.ts';

export interface ScaleParams {
  namespaces: number;
  serviceAccounts: number;
  accesses: number;
  identities: number;
  /** Identities are spread over this many subscriptions (FIC writes are paced per subscription). */
  subscriptions: number;
  armLatencyMs: number;
  /** --max-concurrent-reconciles of the operator. */
  concurrency: number;
  readyTimeoutSec: number;
  /** --resync-period used to trigger the no-change resync. */
  resyncPeriodSec: number;
  /** The script the operator process runs, default src/main.ts. */
  entry?: string;
  /** BENCH_HEAP_SNAPSHOT: write a heap snapshot of the operator here after the memory samples. */
  heapSnapshotDir?: string;
}

export interface BenchParams {
  size: string;
  /** compiled (default): run the operator from tsc output, as the image does; ts: src/main.ts. */
  entry: 'compiled' | 'ts';
  scenarios: string[];
  webhook: WebhookParams;
  scale: ScaleParams;
}

const num = (name: string, fallback: number): number => {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : Number(value);
};
const list = (name: string, fallback: number[]): number[] =>
  process.env[name] ? (process.env[name] ?? '').split(',').map(Number) : fallback;

export function benchParams(env: NodeJS.ProcessEnv = process.env): BenchParams {
  const size = env.BENCH_SIZE ?? 'default';
  if (size !== 'quick' && size !== 'default')
    throw new Error(`BENCH_SIZE must be quick or default, got ${size}`);
  const quick = size === 'quick';
  const entry = env.BENCH_ENTRY ?? 'compiled';
  if (entry !== 'compiled' && entry !== 'ts')
    throw new Error(`BENCH_ENTRY must be compiled or ts, got ${entry}`);
  return {
    size,
    entry,
    scenarios: (env.BENCH_SCENARIOS ?? 'webhook,scale').split(',').filter(Boolean),
    webhook: {
      rates: list('BENCH_RATES', [500, 1000, 2000]),
      fixedSec: num('BENCH_FIXED_SEC', quick ? 5 : 10),
      warmupSec: num('BENCH_WARMUP_SEC', quick ? 2 : 3),
      searchStepSec: num('BENCH_SEARCH_STEP_SEC', quick ? 4 : 6),
      searchStart: num('BENCH_SEARCH_START', 1000),
      searchFactor: num('BENCH_SEARCH_FACTOR', 1.5),
      searchMax: num('BENCH_SEARCH_MAX', 20000),
      p99BoundMs: num('BENCH_P99_BOUND_MS', 10),
      modes: (env.BENCH_MODES ?? 'label,inject').split(',') as Array<'label' | 'inject'>,
      ...(env.BENCH_CPU_PROF ? { cpuProfDir: env.BENCH_CPU_PROF } : {}),
    },
    scale: {
      namespaces: num('BENCH_NAMESPACES', quick ? 10 : 100),
      serviceAccounts: num('BENCH_SERVICE_ACCOUNTS', quick ? 1000 : 10000),
      accesses: num('BENCH_ACCESSES', quick ? 100 : 1000),
      identities: num('BENCH_IDENTITIES', quick ? 10 : 100),
      subscriptions: num('BENCH_SUBSCRIPTIONS', 5),
      armLatencyMs: num('BENCH_ARM_LATENCY_MS', 50),
      concurrency: num('BENCH_CONCURRENCY', 4),
      readyTimeoutSec: num('BENCH_READY_TIMEOUT_SEC', quick ? 300 : 600),
      resyncPeriodSec: num('BENCH_RESYNC_SEC', quick ? 60 : 90),
      ...(env.BENCH_HEAP_SNAPSHOT ? { heapSnapshotDir: env.BENCH_HEAP_SNAPSHOT } : {}),
    },
  };
}
