// Driving load from a child process (bench/load.ts, autocannon) and summarising it: fixed-rate
// runs, and the search for the highest rate sustained with a p99 under a bound. Shared by
// `npm run bench` and the reliability suite's webhook load test.
import { spawn } from 'node:child_process';
import type autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  /** PEM file of the CA that signed the server's certificate. */
  caFile?: string;
  body: string;
  /** Every response body must equal this; others count as mismatches. */
  expectBody?: string;
  connections: number;
  /** Requests per second over all connections; unlimited when absent. */
  rate?: number;
  durationSec: number;
  /** Unrecorded load first (JIT, TLS sessions, connection pools). */
  warmupSec?: number;
  timeoutSec?: number;
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface LoadResult {
  rate: number | null;
  connections: number;
  durationSec: number;
  /** Responses per second actually achieved. */
  achieved: number;
  responses: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  statusCodes: Record<string, number>;
  /** Milliseconds, from every response (2xx or not). */
  latencyMs: Latency;
}

const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export function summarise(options: LoadOptions, result: autocannon.Result, latencies: number[]): LoadResult {
  const sorted = Float64Array.from(latencies).sort();
  const sum = latencies.reduce((a, b) => a + b, 0);
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(
    (result as unknown as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats ?? {},
  )) {
    statusCodes[code] = stats.count;
  }
  return {
    rate: options.rate ?? null,
    connections: options.connections,
    durationSec: options.durationSec,
    achieved: round(latencies.length / (result.duration || options.durationSec), 1),
    responses: latencies.length,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: (result as unknown as { mismatches?: number }).mismatches ?? 0,
    statusCodes,
    latencyMs: {
      p50: round(percentile(sorted, 50)),
      p90: round(percentile(sorted, 90)),
      p99: round(percentile(sorted, 99)),
      p999: round(percentile(sorted, 99.9)),
      max: round(sorted.at(-1) ?? Number.NaN),
      mean: round(latencies.length ? sum / latencies.length : Number.NaN),
    },
  };
}

const LOAD_SCRIPT = new URL('./load.ts', import.meta.url).pathname;

/** Runs bench/load.ts in a child process and returns what it measured. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOAD_SCRIPT, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`load generator exited ${code}: ${err.slice(-2000)}`));
        return;
      }
      resolve(JSON.parse(line) as LoadResult);
    });
  });
}

/** Connections for a rate: enough that each sends at most ~100/s, so a slow answer does not cap the rate. */
export function connectionsFor(rate: number | undefined): number {
  if (!rate) return 64;
  return Math.max(4, Math.min(128, Math.ceil(rate / 100)));
}

/** A run is sustained when it kept up (≥ 95 % of the rate), failed nothing, and p99 stayed under the bound. */
export function sustained(result: LoadResult, p99BoundMs: number): boolean {
  const keptUp = result.rate === null || result.achieved >= 0.95 * result.rate;
  const clean =
    result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && result.mismatches === 0;
  return keptUp && clean && result.latencyMs.p99 < p99BoundMs;
}

export interface SearchOptions {
  base: Omit<LoadOptions, 'rate' | 'connections' | 'durationSec'>;
  p99BoundMs: number;
  startRate: number;
  /** Each step multiplies the rate by this. */
  factor: number;
  maxRate: number;
  stepSec: number;
  /** Called after each step (progress). */
  onStep?: (result: LoadResult, ok: boolean) => void;
}

export interface SearchResult {
  /** The highest rate sustained (0 if even the first step failed). */
  maxRate: number;
  best: LoadResult | undefined;
  steps: LoadResult[];
}

/**
 * Searches upward: the rate grows by `factor` while runs are sustained; after the first failure
 * one bisection step between the last good and the failed rate refines the answer.
 */
export async function searchMaxRate(options: SearchOptions): Promise<SearchResult> {
  const steps: LoadResult[] = [];
  let best: LoadResult | undefined;
  let rate = options.startRate;
  let failedAt: number | undefined;
  const step = async (r: number): Promise<boolean> => {
    const result = await runLoad({
      ...options.base,
      rate: r,
      connections: connectionsFor(r),
      durationSec: options.stepSec,
    });
    const ok = sustained(result, options.p99BoundMs);
    steps.push(result);
    options.onStep?.(result, ok);
    if (ok && (!best || r > (best.rate ?? 0))) best = result;
    return ok;
  };
  while (rate <= options.maxRate) {
    if (!(await step(rate))) {
      failedAt = rate;
      break;
    }
    rate = Math.round(rate * options.factor);
  }
  // Even the first rate failed: look downward instead (a loaded or small machine).
  for (let down = 0; !best && failedAt !== undefined && down < 3; down++) {
    failedAt = Math.round(failedAt / 2);
    if (!(await step(failedAt))) continue;
    failedAt = Math.round(failedAt * 2);
  }
  const good = best?.rate ?? 0;
  if (failedAt !== undefined && good > 0) {
    const middle = Math.round((good + failedAt) / 2 / 50) * 50;
    if (middle > good && middle < failedAt) await step(middle);
  }
  return { maxRate: best?.rate ?? 0, best, steps };
}
