import type { AccessToken, TokenCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { SharedTokenCredential } from '../../../src/azure/shared-token-credential.ts';

function counting(lifetimeMs: number, now: () => number) {
  const calls: string[] = [];
  let n = 0;
  const inner: TokenCredential = {
    async getToken(scopes) {
      calls.push([scopes].flat().join(' '));
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { token: `t${++n}`, expiresOnTimestamp: now() + lifetimeMs } satisfies AccessToken;
    },
  };
  return { inner, calls };
}

describe('SharedTokenCredential', () => {
  it('merges concurrent requests for a scope into one, and serves the token from then on', async () => {
    let now = 0;
    const { inner, calls } = counting(3_600_000, () => now);
    const shared = new SharedTokenCredential(inner, () => now);
    const tokens = await Promise.all(
      Array.from({ length: 5 }, () => shared.getToken('https://management.azure.com/.default')),
    );
    expect(tokens.map((t) => t?.token)).toEqual(['t1', 't1', 't1', 't1', 't1']);
    now = 3_000_000;
    expect((await shared.getToken(['https://management.azure.com/.default']))?.token).toBe('t1');
    expect(calls).toHaveLength(1);
  });

  it('keeps scopes apart, refreshes 5 minutes before expiry, and never caches a claims challenge', async () => {
    let now = 0;
    const { inner, calls } = counting(3_600_000, () => now);
    const shared = new SharedTokenCredential(inner, () => now);
    await shared.getToken('a/.default');
    await shared.getToken('b/.default');
    expect(calls).toEqual(['a/.default', 'b/.default']);
    now = 3_600_000 - 5 * 60_000 + 1;
    expect((await shared.getToken('a/.default'))?.token).toBe('t3');
    await shared.getToken('a/.default', { claims: 'challenge' });
    expect(calls).toHaveLength(4);
  });

  it('lets a failure through and tries again on the next call', async () => {
    let fail = true;
    const inner: TokenCredential = {
      async getToken() {
        if (fail) throw new Error('AADSTS70021');
        return { token: 'ok', expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    const shared = new SharedTokenCredential(inner);
    await expect(shared.getToken('x')).rejects.toThrow('AADSTS70021');
    fail = false;
    expect((await shared.getToken('x'))?.token).toBe('ok');
  });

  it('given a factory, replaces a credential whose request failed (MSAL throttles it 60 s)', async () => {
    let outage = true;
    let created = 0;
    const factory = (): TokenCredential => {
      created++;
      let throttled = false;
      return {
        async getToken() {
          if (throttled || outage) {
            throttled = true;
            throw new Error('AADSTS90000: 503');
          }
          return { token: `t${created}`, expiresOnTimestamp: Date.now() + 3_600_000 };
        },
      };
    };
    const shared = new SharedTokenCredential(factory);
    await expect(shared.getToken('x')).rejects.toThrow('AADSTS90000');
    outage = false;
    expect((await shared.getToken('x'))?.token).toBe('t2');
    expect(created).toBe(2);
  });
});
