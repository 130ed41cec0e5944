// A keyed work queue with client-go's contract, plus the worker loop controller-runtime wraps
// around it:
// - a key waits in the queue at most once, however often it is added (informer events coalesce);
// - a key is never processed by two workers at once: re-added while processing, it runs again
//   after the current run finishes, so a reconcile always sees the latest state;
// - failures back off exponentially per key (controller-runtime's 5 ms … 1000 s by default), with
//   an optional floor from the error (Azure's Retry-After), and a success resets the backoff;
// - at most `concurrency` keys are processed at a time;
// - shutdown() stops taking work and resolves once in-flight work has finished.
import type { ControllerMetrics, ReconcileResultLabel } from '../observability/controller-metrics.ts';
import { RECONCILE_RESULTS } from '../observability/controller-metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { type BackoffPolicy, KeyedBackoff } from '../util/backoff.ts';
import { findInCauseChain } from '../util/cause-chain.ts';
import { runWithWorkerSlot, type WorkerSlot } from '../util/worker-slot.ts';

/** What a reconcile asks for when it returns normally. An empty result means done. */
export interface ReconcileResult {
  /** Run again after the key's backoff (not an error: e.g. waiting for Azure to propagate). */
  requeue?: boolean;
  /** Run again after this long; resets the backoff, as a success does (e.g. periodic checks). */
  requeueAfterMs?: number;
}

// biome-ignore lint/suspicious/noConfusingVoidType: a reconcile with nothing to ask may simply return.
export type ProcessFunction = (key: string) => Promise<ReconcileResult | undefined | void>;

/** The work queue's backoff policy; each number defaults to controller-runtime's. */
export type BackoffOptions = Partial<BackoffPolicy>;

/** controller-runtime's per-item defaults: 5 ms, doubled per consecutive failure, up to 1000 s. */
const DEFAULT_BACKOFF: BackoffPolicy = { baseDelayMs: 5, maxDelayMs: 1_000_000 };

export interface WorkQueueOptions {
  /** Controller name: the `name`/`controller` label of the metrics and the logs. */
  name: string;
  process: ProcessFunction;
  /** Keys processed at the same time (MaxConcurrentReconciles). Default 1. */
  concurrency?: number;
  backoff?: BackoffOptions;
  metrics?: ControllerMetrics;
  logger?: Logger;
}

/** An error asking to be retried no sooner than `retryAfterMs` (e.g. from a 429's Retry-After). */
export class RetryAfterError extends Error {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RetryAfterError';
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The retry floor an error carries: a numeric `retryAfterMs` on it or on an error in its `cause`
 * chain, so a wrapper that adds context keeps the hint of the error it wraps.
 */
export function retryAfterMsOf(error: unknown): number | undefined {
  const carrier = findInCauseChain(error, (e): e is { retryAfterMs: number } => {
    const value = (e as { retryAfterMs?: unknown }).retryAfterMs;
    return typeof value === 'number' && Number.isFinite(value) && value >= 0;
  });
  return carrier?.retryAfterMs;
}

/** Per-key exponential backoff with the work queue's defaults (client-go's item limiter). */
export class ExponentialBackoff extends KeyedBackoff {
  constructor(options: BackoffOptions = {}) {
    super({
      baseDelayMs: options.baseDelayMs ?? DEFAULT_BACKOFF.baseDelayMs,
      maxDelayMs: options.maxDelayMs ?? DEFAULT_BACKOFF.maxDelayMs,
    });
  }
}

/** FIFO of keys with O(1) amortised shift; compacts once the consumed head dominates. */
class Fifo {
  #items: string[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(key: string): void {
    this.#items.push(key);
  }

  shift(): string | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const key = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return key;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

interface Delayed {
  readyAt: number;
  timer: NodeJS.Timeout;
}

export class WorkQueue {
  readonly name: string;
  readonly concurrency: number;
  readonly #process: ProcessFunction;
  readonly #backoff: ExponentialBackoff;
  readonly #metrics: ControllerMetrics | undefined;
  readonly #logger: Logger | undefined;
  readonly #untrack: (() => void) | undefined;

  readonly #queue = new Fifo();
  /** Keys that need processing: in the queue, or re-added while being processed. */
  readonly #dirty = new Set<string>();
  /** Keys being processed, with their start time (performance.now()). */
  readonly #processing = new Map<string, number>();
  /** When each dirty key was added, for workqueue_queue_duration_seconds. */
  readonly #addedAt = new Map<string, number>();
  readonly #delayed = new Map<string, Delayed>();

  #started = false;
  #shuttingDown = false;
  #drained: Array<() => void> = [];
  /** Workers in use: keys being processed minus those waiting off their worker (worker-slot.ts). */
  #busy = 0;
  /** Runs waiting to take a worker again after a wait; they go before new keys. */
  readonly #resuming: Array<() => void> = [];
  /** Aborted at shutdown: runs waiting off their worker stop waiting. */
  readonly #stop = new AbortController();

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1)
      throw new Error(`work queue ${options.name}: concurrency must be a positive integer`);
    this.#process = options.process;
    this.#backoff = new ExponentialBackoff(options.backoff);
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    if (this.#metrics) {
      const m = this.#metrics;
      const controller = { controller: this.name };
      m.maxConcurrentReconciles.set(controller, this.concurrency);
      m.activeWorkers.set(controller, 0);
      m.workqueue.depth.set({ name: this.name }, 0);
      // Zero-initialised series, as controller-runtime does, so rate() works from the first error.
      for (const result of RECONCILE_RESULTS) m.reconcileTotal.inc({ ...controller, result }, 0);
      m.reconcileErrors.inc(controller, 0);
      m.workqueue.adds.inc({ name: this.name }, 0);
      m.workqueue.retries.inc({ name: this.name }, 0);
      this.#untrack = m.trackInFlight({
        name: this.name,
        inFlightSeconds: () => {
          const now = performance.now();
          return [...this.#processing.values()].map((start) => (now - start) / 1000);
        },
      });
    }
  }

  /** Keys waiting to be processed (including ones re-added while being processed). */
  get length(): number {
    return this.#dirty.size;
  }

  /** Keys being processed right now. */
  get active(): number {
    return this.#processing.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Starts the workers. Keys added before start() wait, as they do before caches have synced. */
  start(): void {
    if (this.#shuttingDown) throw new Error(`work queue ${this.name} is shut down`);
    this.#started = true;
    this.#dispatch();
  }

  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#addedAt.set(key, performance.now());
    this.#metrics?.workqueue.adds.inc({ name: this.name });
    this.#setDepth();
    // A key being processed is queued again when that run ends (see #done), never alongside it.
    if (this.#processing.has(key)) return;
    this.#queue.push(key);
    this.#dispatch();
  }

  /** Adds `key` after `delayMs`. An earlier pending delay for the key wins over a later one. */
  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    this.#metrics?.workqueue.retries.inc({ name: this.name });
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const readyAt = performance.now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending) {
      if (pending.readyAt <= readyAt) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delayMs);
    // Pending retries alone should not keep a process alive that has nothing else to do.
    timer.unref?.();
    this.#delayed.set(key, { readyAt, timer });
  }

  /**
   * Adds `key` after its next backoff delay, but no sooner than `retryAfterMs` when given.
   * Returns the delay used.
   */
  addRateLimited(key: string, retryAfterMs?: number): number {
    const delay = Math.max(this.#backoff.when(key), retryAfterMs ?? 0);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the key's backoff: its next failure retries after the base delay again. */
  forget(key: string): void {
    this.#backoff.forget(key);
  }

  /** Consecutive rate-limited requeues of `key` since it was last forgotten. */
  numRequeues(key: string): number {
    return this.#backoff.retries(key);
  }

  /**
   * Stops taking work: queued and delayed keys are dropped, later adds are ignored. Resolves
   * once every key being processed has finished.
   */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    this.#stop.abort(new Error(`work queue ${this.name} is shutting down`));
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    this.#queue.clear();
    this.#dirty.clear();
    this.#addedAt.clear();
    this.#setDepth();
    if (this.#processing.size > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
    this.#untrack?.();
  }

  #dispatch(): void {
    while (this.#started && !this.#shuttingDown && this.#busy < this.concurrency && this.#queue.length > 0) {
      const key = this.#queue.shift()!;
      const now = performance.now();
      this.#dirty.delete(key);
      const addedAt = this.#addedAt.get(key);
      this.#addedAt.delete(key);
      if (addedAt !== undefined)
        this.#metrics?.workqueue.queueDuration.observe({ name: this.name }, (now - addedAt) / 1000);
      this.#processing.set(key, now);
      this.#busy += 1;
      this.#setDepth();
      this.#metrics?.activeWorkers.set({ controller: this.name }, this.#busy);
      void this.#work(key, now);
    }
  }

  async #work(key: string, startedAt: number): Promise<void> {
    let result: ReconcileResultLabel;
    const slot = this.#slot();
    try {
      const outcome = (await runWithWorkerSlot(slot, () => this.#process(key))) ?? {};
      if (outcome.requeueAfterMs !== undefined && outcome.requeueAfterMs > 0) {
        this.forget(key);
        this.addAfter(key, outcome.requeueAfterMs);
        result = 'requeue_after';
      } else if (outcome.requeue) {
        this.addRateLimited(key);
        result = 'requeue';
      } else {
        this.forget(key);
        result = 'success';
      }
    } catch (error) {
      const retryAfterMs = retryAfterMsOf(error);
      const delay = this.#shuttingDown ? undefined : this.addRateLimited(key, retryAfterMs);
      result = 'error';
      this.#metrics?.reconcileErrors.inc({ controller: this.name });
      // A run cut short by the shutdown (its waits aborted) is no reconciler error.
      const log = this.#shuttingDown
        ? this.#logger?.debug.bind(this.#logger)
        : this.#logger?.error.bind(this.#logger);
      log?.(
        {
          controller: this.name,
          key,
          err: error instanceof Error ? error.message : String(error),
          retryInMs: delay,
        },
        'Reconciler error',
      );
    }
    const seconds = (performance.now() - startedAt) / 1000;
    this.#metrics?.reconcileTotal.inc({ controller: this.name, result });
    this.#metrics?.reconcileTime.observe({ controller: this.name }, seconds);
    this.#metrics?.workqueue.workDuration.observe({ name: this.name }, seconds);
    this.#done(key, slot.finish());
  }

  /**
   * The worker a run holds, lent to it so it can wait without holding it (worker-slot.ts). Calls
   * out of turn (a release while released, a reacquire while held) are ignored, so stray callers
   * never skew the count of busy workers.
   */
  #slot(): WorkerSlot & { finish(): boolean } {
    let held = true;
    let finished = false;
    return {
      finish: () => {
        finished = true;
        return held;
      },
      release: () => {
        if (!held || finished) return;
        held = false;
        this.#releaseWorker();
      },
      reacquire: () => {
        if (held || finished) return Promise.resolve();
        held = true;
        if (this.#busy < this.concurrency) {
          this.#busy += 1;
          this.#metrics?.activeWorkers.set({ controller: this.name }, this.#busy);
          return Promise.resolve();
        }
        return new Promise<void>((resolve) => this.#resuming.push(resolve));
      },
      signal: this.#stop.signal,
    };
  }

  /** A worker comes free: a run waiting to resume takes it, else it serves the queue. */
  #releaseWorker(): void {
    const resume = this.#resuming.shift();
    if (resume) {
      resume();
      return;
    }
    this.#busy -= 1;
    this.#metrics?.activeWorkers.set({ controller: this.name }, this.#busy);
    this.#dispatch();
  }

  /** `held`: whether the run still held its worker when it ended (it always should). */
  #done(key: string, held: boolean): void {
    this.#processing.delete(key);
    if (held) {
      const resume = this.#resuming.shift();
      if (resume) resume();
      else this.#busy -= 1;
    }
    this.#metrics?.activeWorkers.set({ controller: this.name }, this.#busy);
    if (this.#shuttingDown) {
      if (this.#processing.size === 0) for (const resolve of this.#drained.splice(0)) resolve();
      return;
    }
    if (this.#dirty.has(key)) this.#queue.push(key);
    this.#dispatch();
  }

  #setDepth(): void {
    this.#metrics?.workqueue.depth.set({ name: this.name }, this.#dirty.size);
  }
}
