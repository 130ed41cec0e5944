import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { KeyedMutex } from '../../../src/azure/keyed-mutex.ts';

describe('KeyedMutex', () => {
  it('runs tasks of one key one at a time, in arrival order', async () => {
    const mutex = new KeyedMutex();
    let running = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        mutex.run('identity', async () => {
          running++;
          most = Math.max(most, running);
          await sleep(Math.random() * 5);
          order.push(i);
          running--;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(mutex.size).toBe(0);
  });

  it('runs different keys concurrently', async () => {
    const mutex = new KeyedMutex();
    let running = 0;
    let most = 0;
    await Promise.all(
      ['a', 'b', 'c'].map((key) =>
        mutex.run(key, async () => {
          running++;
          most = Math.max(most, running);
          await sleep(10);
          running--;
        }),
      ),
    );
    expect(most).toBe(3);
  });

  it('releases the key when a task fails, and passes results and errors through', async () => {
    const mutex = new KeyedMutex();
    const failed = mutex.run('k', async () => {
      throw new Error('boom');
    });
    const next = mutex.run('k', async () => 42);
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe(42);
    expect(mutex.size).toBe(0);
  });
});
