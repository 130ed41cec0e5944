import { describe, expect, it } from 'vitest';
import { SharedFicLists } from '../../../src/azure/fic-list-cache.ts';
import type { ExistingFic } from '../../../src/azure/fic-plan.ts';

const fic = (name: string, subject = `system:serviceaccount:ns:${name}`): ExistingFic => ({
  name,
  issuer: 'https://issuer',
  subject,
  audiences: ['api://AzureADTokenExchange'],
});
const names = (fics: ExistingFic[] | undefined) => fics?.map((f) => f.name).sort();

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SharedFicLists', () => {
  it('hands a list out again to callers who accept its age, counted from when the LIST was sent', async () => {
    const lists = new SharedFicLists();
    await lists.track('id', Promise.resolve({ fics: [fic('a')], sentAt: 1000 }));
    expect(names(lists.fresh('id', 6000, 5000)?.fics)).toEqual(['a']);
    expect(lists.fresh('id', 6001, 5000)).toBeUndefined();
    expect(lists.fresh('id', 6001, 30_000)?.listedAt).toBe(1000);
    expect(lists.fresh('other', 1000, 5000)).toBeUndefined();
  });

  it('lets everyone join the LIST in flight', async () => {
    const lists = new SharedFicLists();
    const read = deferred<{ fics: ExistingFic[]; sentAt: number }>();
    const first = lists.track('id', read.promise);
    expect(lists.pending('id')).toBe(first);
    read.resolve({ fics: [fic('a')], sentAt: 0 });
    expect(names((await first).fics)).toEqual(['a']);
    expect(lists.pending('id')).toBeUndefined();
  });

  it('applies our own writes to the list held', async () => {
    const lists = new SharedFicLists();
    await lists.track('id', Promise.resolve({ fics: [fic('a'), fic('b')], sentAt: 0 }));
    lists.put('id', fic('c'));
    lists.put('id', fic('A', 'system:serviceaccount:ns:changed'));
    lists.remove('id', 'B');
    const held = lists.fresh('id', 0, 0)?.fics ?? [];
    expect(names(held)).toEqual(['A', 'c']);
    expect(held.find((f) => f.name === 'A')?.subject).toBe('system:serviceaccount:ns:changed');
    // A copy: changing it changes nothing held.
    held.pop();
    expect(lists.fresh('id', 0, 0)?.fics).toHaveLength(2);
  });

  it('applies a write that lands while a LIST is in flight to that LIST when it arrives', async () => {
    const lists = new SharedFicLists();
    const read = deferred<{ fics: ExistingFic[]; sentAt: number }>();
    const listing = lists.track('id', read.promise);
    lists.put('id', fic('new'));
    lists.remove('id', 'gone');
    // The LIST left before both writes.
    read.resolve({ fics: [fic('old'), fic('gone')], sentAt: 0 });
    expect(names((await listing).fics)).toEqual(['new', 'old']);
    expect(names(lists.fresh('id', 0, 0)?.fics)).toEqual(['new', 'old']);
  });

  it('drops the list when Azure disagrees with it, and neither keeps nor shares a LIST in flight then', async () => {
    const lists = new SharedFicLists();
    await lists.track('id', Promise.resolve({ fics: [fic('a')], sentAt: 0 }));
    lists.forget('id');
    expect(lists.fresh('id', 0, 60_000)).toBeUndefined();
    const read = deferred<{ fics: ExistingFic[]; sentAt: number }>();
    const listing = lists.track('id', read.promise);
    lists.forget('id');
    expect(lists.pending('id')).toBeUndefined();
    read.resolve({ fics: [fic('stale')], sentAt: 0 });
    expect(names((await listing).fics)).toEqual(['stale']);
    expect(lists.fresh('id', 0, 60_000)).toBeUndefined();
  });

  it('passes a failed LIST on without keeping anything', async () => {
    const lists = new SharedFicLists();
    const failure = new Error('404');
    await expect(lists.track('id', Promise.reject(failure))).rejects.toBe(failure);
    expect(lists.pending('id')).toBeUndefined();
    expect(lists.size).toBe(0);
  });
});
