// Waiting without holding a worker. A reconcile runs on one of its work queue's few workers; when
// it must wait a long while for something that is not work (a paced ARM write's slot, the lock of
// an identity another reconcile is writing to), it gives its worker back for the wait and takes
// one again after, so other keys run meanwhile and the reconcile still finishes in one run. Before
// this, such a wait either held a worker (one throttled identity stalled every worker) or ended
// the reconcile to be retried later (one reconcile more per resource, with its reads again).
//
// The capability travels with the reconcile's async context (AsyncLocalStorage), so the code that
// waits (src/azure) need not know about work queues. Outside a work queue, nothing is released.
import { AsyncLocalStorage } from 'node:async_hooks';

/** What a work queue lends the run of one key. */
export interface WorkerSlot {
  /** Gives the worker back to the queue. */
  release(): void;
  /** Takes a worker again (waits for a free one; resumed runs go first). */
  reacquire(): Promise<void>;
  /** Aborted when the queue shuts down: waits end at once. */
  readonly signal: AbortSignal;
}

const slots = new AsyncLocalStorage<WorkerSlot>();

/** Runs `task` with `slot` as its worker, for waitOffWorker() calls inside it. */
export function runWithWorkerSlot<T>(slot: WorkerSlot, task: () => Promise<T>): Promise<T> {
  return slots.run(slot, task);
}

/** Whether the caller runs on a work queue's worker it can give back while it waits. */
export function canWaitOffWorker(): boolean {
  return slots.getStore() !== undefined;
}

/**
 * Awaits `wait(signal)` with the caller's worker given back meanwhile (when it has one). The
 * signal is aborted when the queue shuts down, so a long wait does not hold up a shutdown.
 */
export async function waitOffWorker<T>(wait: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
  const slot = slots.getStore();
  if (!slot) return wait(undefined);
  slot.release();
  try {
    return await wait(slot.signal);
  } finally {
    await slot.reacquire();
  }
}

/** Whether the caller's work queue is shutting down: its errors are no failures to report. */
export function workerStopping(): boolean {
  return slots.getStore()?.signal.aborted ?? false;
}

/** `promise`, or a rejection with the signal's reason as soon as `signal` aborts. */
export function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
