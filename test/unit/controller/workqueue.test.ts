import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ExponentialBackoff,
  type ProcessFunction,
  RetryAfterError,
  retryAfterMsOf,
  WorkQueue,
} from '../../../src/controller/workqueue.ts';
import { createControllerMetrics } from '../../../src/observability/controller-metrics.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Lets settled promises run their continuations without moving the clock. */
const flush = () => vi.advanceTimersByTimeAsync(0);

function queue(process: ProcessFunction, options: Partial<ConstructorParameters<typeof WorkQueue>[0]> = {}) {
  const q = new WorkQueue({ name: 'test', process, ...options });
  return q;
}

describe('ExponentialBackoff', () => {
  it('doubles from the base per failure, caps at the max, and forget resets it', () => {
    const b = new ExponentialBackoff({ baseDelayMs: 5, maxDelayMs: 40 });
    expect([1, 2, 3, 4, 5, 6].map(() => b.when('k'))).toEqual([5, 10, 20, 40, 40, 40]);
    expect(b.retries('k')).toBe(6);
    expect(b.when('other')).toBe(5);
    b.forget('k');
    expect(b.retries('k')).toBe(0);
    expect(b.when('k')).toBe(5);
  });

  it("defaults to controller-runtime's 5 ms base and 1000 s cap", () => {
    const b = new ExponentialBackoff();
    expect(b.when('k')).toBe(5);
    for (let i = 0; i < 100; i += 1) b.when('k');
    expect(b.when('k')).toBe(1_000_000);
  });

  it('rejects a nonsensical configuration', () => {
    expect(() => new ExponentialBackoff({ baseDelayMs: 0 })).toThrow();
    expect(() => new ExponentialBackoff({ baseDelayMs: 10, maxDelayMs: 5 })).toThrow();
  });
});

describe('retryAfterMsOf', () => {
  it('reads retryAfterMs from the error or from its cause chain', () => {
    expect(retryAfterMsOf(new RetryAfterError('throttled', 3000))).toBe(3000);
    const wrapped = new Error('FIC write failed', { cause: new RetryAfterError('429', 1500) });
    expect(retryAfterMsOf(wrapped)).toBe(1500);
    expect(retryAfterMsOf(Object.assign(new Error('x'), { retryAfterMs: 42 }))).toBe(42);
    expect(retryAfterMsOf(new Error('plain'))).toBeUndefined();
    expect(retryAfterMsOf('a string')).toBeUndefined();
    expect(retryAfterMsOf(Object.assign(new Error('x'), { retryAfterMs: -1 }))).toBeUndefined();
    const loop: { cause?: unknown } = {};
    loop.cause = loop;
    expect(retryAfterMsOf(loop)).toBeUndefined();
  });
});

describe('WorkQueue', () => {
  it('queues a key once however often it is added', async () => {
    const process = vi.fn(async (_key: string) => {});
    const q = queue(process);
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(q.length).toBe(2);
    q.start();
    await flush();
    expect(process.mock.calls.map(([key]) => key)).toEqual(['ns/a', 'ns/b']);
    expect(q.length).toBe(0);
  });

  it('never processes a key concurrently with itself; a re-add during processing runs after', async () => {
    let running = 0;
    let maxRunning = 0;
    const process = vi.fn(async () => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      await sleep(100);
      running -= 1;
    });
    const q = queue(process, { concurrency: 4 });
    q.start();
    q.add('k');
    expect(process).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(10);
    q.add('k');
    q.add('k');
    expect(q.length).toBe(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(process).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(40);
    expect(process).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(200);
    expect(process).toHaveBeenCalledTimes(2);
    expect(maxRunning).toBe(1);
  });

  it('backs off exponentially per key on errors and resets after a success', async () => {
    const times: number[] = [];
    let failUntil = 5;
    const q = queue(async () => {
      times.push(Date.now());
      if (times.length <= failUntil) throw new Error('boom');
    });
    const t0 = Date.now();
    q.start();
    q.add('k');
    await vi.advanceTimersByTimeAsync(1000);
    // 5 failures, then a success: retries after 5, 10, 20, 40, 80 ms.
    expect(times.map((t) => t - t0)).toEqual([0, 5, 15, 35, 75, 155]);
    expect(q.numRequeues('k')).toBe(0);

    times.length = 0;
    failUntil = 1;
    const t1 = Date.now();
    q.add('k');
    await vi.advanceTimersByTimeAsync(1000);
    expect(times.map((t) => t - t1)).toEqual([0, 5]);
  });

  it('caps the backoff at the configured maximum', async () => {
    const times: number[] = [];
    const q = queue(
      async () => {
        times.push(Date.now());
        throw new Error('always');
      },
      { backoff: { baseDelayMs: 100, maxDelayMs: 300 } },
    );
    const t0 = Date.now();
    q.start();
    q.add('k');
    await vi.advanceTimersByTimeAsync(1500);
    expect(times.map((t) => t - t0)).toEqual([0, 100, 300, 600, 900, 1200, 1500]);
    await q.shutdown();
  });

  it("honours an error's retryAfterMs as a floor over the backoff", async () => {
    const times: number[] = [];
    const q = queue(async () => {
      times.push(Date.now());
      if (times.length === 1) throw new Error('wrapped', { cause: new RetryAfterError('429', 3000) });
      // The floor does not shorten a longer backoff: this error has a 1 ms hint.
      if (times.length <= 6) throw new RetryAfterError('429', 1);
    });
    const t0 = Date.now();
    q.start();
    q.add('k');
    await vi.advanceTimersByTimeAsync(2999);
    expect(times).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    // The failure count kept growing under the floor: 10, 20, 40, 80, 160 ms after it.
    expect(times.map((t) => t - t0)).toEqual([0, 3000, 3010, 3030, 3070, 3150, 3310]);
  });

  it('requeues after requeueAfterMs and resets the backoff; requeue: true backs off', async () => {
    const times: number[] = [];
    const results = [
      Promise.reject(new Error('first fails')),
      Promise.resolve({ requeue: true }),
      Promise.resolve({ requeueAfterMs: 1000 }),
      Promise.reject(new Error('fails after the reset')),
      Promise.resolve(undefined),
    ];
    for (const r of results) r.catch(() => {});
    const q = queue(() => {
      times.push(Date.now());
      return results[times.length - 1]!;
    });
    const t0 = Date.now();
    q.start();
    q.add('k');
    await vi.advanceTimersByTimeAsync(5000);
    // error → 5 ms; requeue → 10 ms; requeueAfter → 1000 ms (and forget); error → 5 ms again.
    expect(times.map((t) => t - t0)).toEqual([0, 5, 15, 1015, 1020]);
  });

  it('lets an earlier pending delay win over a later one', async () => {
    const process = vi.fn(async () => {});
    const q = queue(process);
    q.start();
    q.addAfter('k', 1000);
    q.addAfter('k', 100);
    q.addAfter('k', 5000);
    await vi.advanceTimersByTimeAsync(100);
    expect(process).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(process).toHaveBeenCalledTimes(1);
  });

  it('bounds concurrency', async () => {
    let running = 0;
    let maxRunning = 0;
    const done: string[] = [];
    const q = queue(
      async (key) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        await sleep(100);
        running -= 1;
        done.push(key);
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 10; i += 1) q.add(`k${i}`);
    q.start();
    expect(q.active).toBe(3);
    await vi.advanceTimersByTimeAsync(100);
    expect(done).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(300);
    expect(done).toHaveLength(10);
    expect(maxRunning).toBe(3);
  });

  it('rejects a concurrency below one', () => {
    expect(() => queue(async () => {}, { concurrency: 0 })).toThrow(/concurrency/);
  });

  it('waits for in-flight work on shutdown and drops the rest', async () => {
    const process = vi.fn(async (_key: string) => {
      await sleep(500);
    });
    const q = queue(process, { concurrency: 2 });
    q.start();
    q.add('a');
    q.add('b');
    q.add('c');
    q.addAfter('d', 100);
    let finished = false;
    const stopping = q.shutdown().then(() => {
      finished = true;
    });
    q.add('e');
    await vi.advanceTimersByTimeAsync(499);
    expect(finished).toBe(false);
    expect(q.active).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(finished).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(process.mock.calls.map(([key]) => key)).toEqual(['a', 'b']);
  });

  it('does not retry a failure that ends during shutdown', async () => {
    const process = vi.fn(async () => {
      await sleep(10);
      throw new Error('late');
    });
    const q = queue(process);
    q.start();
    q.add('k');
    const stopping = q.shutdown();
    await vi.advanceTimersByTimeAsync(10);
    await stopping;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(process).toHaveBeenCalledTimes(1);
  });

  it('resolves shutdown at once when idle', async () => {
    const q = queue(async () => {});
    await q.shutdown();
    expect(() => q.start()).toThrow(/shut down/);
  });
});

describe('WorkQueue metrics', () => {
  /** A counter's or gauge's value for the given labels. */
  async function value(registry: Registry, name: string, labels: Record<string, string>) {
    const metric = registry.getSingleMetric(name);
    const data = await metric!.get();
    return data.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
  }

  it('moves the workqueue and controller-runtime metrics', async () => {
    const registry = new Registry();
    const metrics = createControllerMetrics(registry);
    expect(createControllerMetrics(registry)).toBe(metrics);

    let fail = true;
    const q = new WorkQueue({
      name: 'access',
      concurrency: 2,
      metrics,
      process: async () => {
        await sleep(1000);
        if (fail) {
          fail = false;
          throw new Error('once');
        }
      },
    });
    const controller = { controller: 'access' };
    const name = { name: 'access' };
    expect(await value(registry, 'controller_runtime_max_concurrent_reconciles', controller)).toBe(2);
    expect(
      await value(registry, 'controller_runtime_reconcile_total', { ...controller, result: 'error' }),
    ).toBe(0);

    q.add('a');
    q.add('a');
    q.add('b');
    expect(await value(registry, 'workqueue_adds_total', name)).toBe(2);
    expect(await value(registry, 'workqueue_depth', name)).toBe(2);

    await vi.advanceTimersByTimeAsync(250);
    q.start();
    expect(await value(registry, 'workqueue_depth', name)).toBe(0);
    expect(await value(registry, 'controller_runtime_active_workers', controller)).toBe(2);
    await vi.advanceTimersByTimeAsync(400);
    expect(await value(registry, 'workqueue_unfinished_work_seconds', name)).toBeCloseTo(0.8);
    expect(await value(registry, 'workqueue_longest_running_processor_seconds', name)).toBeCloseTo(0.4);

    await vi.advanceTimersByTimeAsync(600);
    // One of a, b failed and was retried 5 ms later.
    await vi.advanceTimersByTimeAsync(1100);
    expect(
      await value(registry, 'controller_runtime_reconcile_total', { ...controller, result: 'error' }),
    ).toBe(1);
    expect(
      await value(registry, 'controller_runtime_reconcile_total', { ...controller, result: 'success' }),
    ).toBe(2);
    expect(await value(registry, 'controller_runtime_reconcile_errors_total', controller)).toBe(1);
    expect(await value(registry, 'workqueue_retries_total', name)).toBe(1);
    expect(await value(registry, 'workqueue_adds_total', name)).toBe(3);
    expect(await value(registry, 'controller_runtime_active_workers', controller)).toBe(0);
    expect(await value(registry, 'workqueue_unfinished_work_seconds', name)).toBe(0);

    const text = await registry.metrics();
    expect(text).toMatch(/workqueue_queue_duration_seconds_count\{name="access"\} 3/);
    // The two first adds waited 250 ms before start().
    expect(text).toMatch(/workqueue_queue_duration_seconds_bucket\{le="0.1",name="access"\} 1\n/);
    expect(text).toMatch(/workqueue_work_duration_seconds_count\{name="access"\} 3/);
    expect(text).toMatch(/workqueue_work_duration_seconds_sum\{name="access"\} 3\n/);
    expect(text).toMatch(/controller_runtime_reconcile_time_seconds_count\{controller="access"\} 3/);
    await q.shutdown();
  });

  it('reports leader status through the same metric set', async () => {
    const registry = new Registry();
    const metrics = createControllerMetrics(registry);
    metrics.leaderElectionMasterStatus.set({ name: 'entra-access' }, 1);
    expect(await registry.metrics()).toMatch(/leader_election_master_status\{name="entra-access"\} 1/);
  });
});
