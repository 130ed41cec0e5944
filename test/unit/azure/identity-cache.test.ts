import { describe, expect, it } from 'vitest';
import { DEFAULT_IDENTITY_TTL_MS, IdentityCache } from '../../../src/azure/identity-cache.ts';

const ids = { clientId: 'c', principalId: 'p', tenantId: 't' };

describe('IdentityCache', () => {
  it('keeps an answer for its TTL, from when it arrived', async () => {
    const cache = new IdentityCache<typeof ids>(1000);
    let now = 0;
    expect(cache.peek('a', now)).toBeUndefined();
    const read = cache.track('a', Promise.resolve(ids), () => now);
    expect(cache.pending('a')).toBe(read);
    now = 100;
    await read;
    expect(cache.pending('a')).toBeUndefined();
    expect(cache.peek('a', 1099)).toEqual(ids);
    expect(cache.peek('a', 1100)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('never keeps a failure: a missing identity is asked again', async () => {
    const cache = new IdentityCache<typeof ids>();
    const missing = Object.assign(new Error('not found'), { reason: 'IdentityNotFound' });
    await expect(cache.track('a', Promise.reject(missing), () => 0)).rejects.toBe(missing);
    expect(cache.pending('a')).toBeUndefined();
    expect(cache.peek('a', 0)).toBeUndefined();
  });

  it('forgets an identity found gone, and does not keep a GET that was in flight then', async () => {
    const cache = new IdentityCache<typeof ids>();
    await cache.track('a', Promise.resolve(ids), () => 0);
    cache.forget('a');
    expect(cache.peek('a', 1)).toBeUndefined();
    let resolve!: (v: typeof ids) => void;
    const read = cache.track('b', new Promise((r) => (resolve = r)), () => 0);
    cache.forget('b');
    expect(cache.pending('b')).toBeUndefined();
    resolve(ids);
    expect(await read).toEqual(ids);
    expect(cache.peek('b', 1)).toBeUndefined();
  });

  it('defaults to the resync period, 10 minutes', () => {
    expect(DEFAULT_IDENTITY_TTL_MS).toBe(600_000);
  });
});
