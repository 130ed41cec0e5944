// A run that waits off its worker (src/util/worker-slot.ts): the worker serves other keys
// meanwhile, the run finishes in one reconcile, a resumed run goes before new keys, a shutdown
// ends the wait, and code outside a work queue waits in place.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyedMutex } from '../../../src/azure/keyed-mutex.ts';
import { WorkQueue } from '../../../src/controller/workqueue.ts';
import { canWaitOffWorker, waitOffWorker } from '../../../src/util/worker-slot.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A timer the fake clock drives (node:timers/promises is not faked), ended by `signal`. */
function sleep(
  ms: number,
  _value?: undefined,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    options.signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
    });
  });
}

const waitOff = (ms: number) => waitOffWorker((signal) => sleep(ms, undefined, { signal }));

describe('a run waiting off its worker', () => {
  it('lets the only worker run other keys meanwhile, and still ends in one run', async () => {
    const events: string[] = [];
    const runs = new Map<string, number>();
    const q = new WorkQueue({
      name: 't',
      concurrency: 1,
      process: async (key) => {
        runs.set(key, (runs.get(key) ?? 0) + 1);
        events.push(`${key} start`);
        if (key === 'slow') await waitOff(1000);
        events.push(`${key} end`);
      },
    });
    q.start();
    q.add('slow');
    q.add('a');
    q.add('b');
    await vi.advanceTimersByTimeAsync(10);
    expect(events).toEqual(['slow start', 'a start', 'a end', 'b start', 'b end']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(events.at(-1)).toBe('slow end');
    expect(runs.get('slow')).toBe(1);
    expect(q.active).toBe(0);
  });

  it('resumes before new keys once a worker is free', async () => {
    const events: string[] = [];
    const q = new WorkQueue({
      name: 't',
      concurrency: 1,
      process: async (key) => {
        events.push(`${key} start`);
        if (key === 'waiter') await waitOff(10);
        if (key === 'busy') await sleep(50);
        events.push(`${key} end`);
      },
    });
    q.start();
    q.add('waiter');
    q.add('busy');
    q.add('next');
    await vi.advanceTimersByTimeAsync(100);
    // The waiter's wait ended while `busy` held the worker: it resumed before `next` started.
    expect(events).toEqual([
      'waiter start',
      'busy start',
      'busy end',
      'waiter end',
      'next start',
      'next end',
    ]);
  });

  it('never runs more than `concurrency` keys at once, waits aside', async () => {
    let running = 0;
    let most = 0;
    const q = new WorkQueue({
      name: 't',
      concurrency: 2,
      process: async (key) => {
        running++;
        most = Math.max(most, running);
        await sleep(5);
        running--;
        if (Number(key) % 2 === 0) await waitOff(20);
        running++;
        most = Math.max(most, running);
        await sleep(5);
        running--;
      },
    });
    q.start();
    for (let i = 0; i < 10; i++) q.add(String(i));
    await vi.advanceTimersByTimeAsync(500);
    expect(most).toBe(2);
    expect(q.length + q.active).toBe(0);
  });

  it('ends the wait at shutdown', async () => {
    let outcome = '';
    const q = new WorkQueue({
      name: 't',
      concurrency: 1,
      process: async () => {
        try {
          await waitOff(60_000);
          outcome = 'waited';
        } catch (error) {
          outcome = (error as Error).name;
        }
      },
    });
    q.start();
    q.add('k');
    await vi.advanceTimersByTimeAsync(10);
    const stopped = q.shutdown();
    await vi.advanceTimersByTimeAsync(10);
    await stopped;
    expect(outcome).toBe('AbortError');
  });
});

describe('outside a work queue', () => {
  it('waits in place', async () => {
    expect(canWaitOffWorker()).toBe(false);
    const done = waitOff(100).then(() => 'done');
    await vi.advanceTimersByTimeAsync(100);
    await expect(done).resolves.toBe('done');
  });
});

describe('KeyedMutex under a work queue', () => {
  it('waits for the lock off the worker: another key runs while the holder waits', async () => {
    const lock = new KeyedMutex();
    const events: string[] = [];
    const q = new WorkQueue({
      name: 't',
      concurrency: 1,
      process: async (key) => {
        if (key === 'other') {
          events.push('other ran');
          return;
        }
        await lock.run('identity', async () => {
          events.push(`${key} holds`);
          await waitOff(100);
        });
      },
    });
    q.start();
    q.add('first');
    q.add('second');
    q.add('other');
    await vi.advanceTimersByTimeAsync(10);
    // `second` waits for the lock without the worker, so `other` is not stuck behind it.
    expect(events).toEqual(['first holds', 'other ran']);
    await vi.advanceTimersByTimeAsync(300);
    expect(events).toEqual(['first holds', 'other ran', 'second holds']);
  });
});
