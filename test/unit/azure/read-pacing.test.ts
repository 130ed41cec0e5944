import { describe, expect, it } from 'vitest';
import { DEFAULT_READ_PACING, ReadPacing } from '../../../src/azure/read-pacing.ts';

/** The waits a read sees at each stage, in order, reserving each stage when the one before is due. */
function stages(
  pacing: ReadPacing,
  kind: 'get' | 'list',
  identity: string,
  subscription: string,
  now: number,
) {
  const waits: number[] = [];
  let at = now;
  for (const scope of ReadPacing.scopes) {
    const key = scope === 'identity' ? identity : scope === 'subscription' ? subscription : '';
    const wait = pacing.reserve(kind, scope, key, at);
    waits.push(wait);
    at += wait;
  }
  return { waits, goesAt: at };
}

describe('ReadPacing', () => {
  it("stays a little under Azure's documented read limits", () => {
    const azure = {
      get: { identity: 0.5, subscription: 10, tenant: 30 },
      list: { identity: 0.25, subscription: 5, tenant: 15 },
    };
    for (const kind of ['get', 'list'] as const) {
      const limits = DEFAULT_READ_PACING[kind];
      expect(limits.perIdentity.perSecond).toBeLessThan(azure[kind].identity);
      expect(limits.perIdentity.burst).toBe(1);
      expect(limits.perSubscription.perSecond).toBeLessThan(azure[kind].subscription);
      expect(limits.perSubscription.burst).toBeLessThan(azure[kind].subscription);
      expect(limits.perTenant.perSecond).toBeLessThan(azure[kind].tenant);
      expect(limits.perTenant.burst).toBeLessThan(azure[kind].tenant);
    }
  });

  it('spaces the LISTs of one identity by 1/0.225 s, and GETs apart from LISTs', () => {
    const pacing = new ReadPacing();
    expect(stages(pacing, 'list', 'id-a', 'sub', 0).goesAt).toBe(0);
    expect(stages(pacing, 'list', 'id-a', 'sub', 0).goesAt).toBe(4445);
    expect(stages(pacing, 'list', 'id-a', 'sub', 0).goesAt).toBe(8889);
    // Another identity, and the GETs of the same one, are not held up.
    expect(stages(pacing, 'list', 'id-b', 'sub', 0).goesAt).toBe(0);
    expect(stages(pacing, 'get', 'id-a', 'sub', 0).goesAt).toBe(0);
    expect(stages(pacing, 'get', 'id-a', 'sub', 0).goesAt).toBe(2223);
  });

  it('waits a full interval after a read came back, however late it left', () => {
    const pacing = new ReadPacing();
    stages(pacing, 'get', 'id-a', 'sub', 0);
    // The read left on time but came back 1.5 s later (a slow network): the next one waits 2.22 s
    // from then, not from when the bucket thought the first one went.
    pacing.completed('get', 'id-a', 1500);
    expect(stages(pacing, 'get', 'id-a', 'sub', 2300).goesAt).toBe(1500 + 2223);
  });

  it('spreads a burst over many identities of one subscription at 4.5 LISTs/s after a burst of 4', () => {
    const pacing = new ReadPacing();
    const at = Array.from({ length: 13 }, (_, i) => stages(pacing, 'list', `id-${i}`, 'sub', 0).goesAt);
    expect(at.slice(0, 4)).toEqual([0, 0, 0, 0]);
    // Then one every 222 ms: never more than Azure's 5 per second, over any second.
    for (let i = 4; i < at.length; i++) expect(at[i]).toBe(Math.ceil(((i - 3) / 4.5) * 1000));
    // Another subscription has its own budget.
    expect(stages(pacing, 'list', 'id-x', 'other', 0).goesAt).toBe(0);
  });

  it('takes the subscription slot only once the identity slot is due', () => {
    const pacing = new ReadPacing();
    stages(pacing, 'list', 'id-a', 'sub', 0);
    // id-a's next LIST waits 4.4 s for its identity; meanwhile four other identities take the
    // subscription's burst, and id-a does not hold a subscription slot it could not use.
    const queued = stages(pacing, 'list', 'id-a', 'sub', 0);
    expect(queued.waits[0]).toBe(4445);
    const others = [1, 2, 3].map((i) => stages(pacing, 'list', `id-${i}`, 'sub', 0).goesAt);
    expect(others).toEqual([0, 0, 0]);
  });

  it('holds back the identity and the subscription after a 429, until its Retry-After', () => {
    const pacing = new ReadPacing();
    pacing.pauseUntil('list', 'id-a', 'sub', 4000, 0);
    expect(pacing.reserve('list', 'identity', 'id-a', 0)).toBe(4000);
    // Another identity of the subscription passes its own stage, then waits at the subscription's.
    expect(stages(pacing, 'list', 'id-b', 'sub', 0).goesAt).toBe(4000);
    // Another kind of read is not held back.
    expect(stages(pacing, 'get', 'id-a', 'sub', 0).goesAt).toBe(0);
  });

  it('has a process-wide (tenant) budget across subscriptions', () => {
    const pacing = new ReadPacing({
      ...DEFAULT_READ_PACING,
      list: { ...DEFAULT_READ_PACING.list, perTenant: { perSecond: 2, burst: 2 } },
    });
    const at = ['s1', 's2', 's3', 's4'].map((sub, i) => stages(pacing, 'list', `id-${i}`, sub, 0).goesAt);
    expect(at).toEqual([0, 0, 500, 1000]);
  });
});
