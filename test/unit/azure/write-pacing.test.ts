import { describe, expect, it } from 'vitest';
import { WritePacing } from '../../../src/azure/write-pacing.ts';

// Azure's documented FIC write limits: 0.25/s per identity, 2/s per subscription.
const azure = (maxInlineWaitMs = 1000) =>
  new WritePacing({
    perIdentity: { perSecond: 0.25, burst: 1 },
    perSubscription: { perSecond: 2, burst: 2 },
    maxInlineWaitMs,
  });

describe('WritePacing', () => {
  it('hands a long wait back instead of sleeping on it, so other identities are not held up', () => {
    const pacing = azure();
    expect(pacing.admit('id-a/put/1', 'id-a', 'sub', 0)).toEqual({ go: true, sleepMs: 0 });
    // Identity a's next write is 4 s away: handed back, not slept on in a worker.
    expect(pacing.admit('id-a/put/2', 'id-a', 'sub', 0)).toEqual({ go: false, retryAfterMs: 4000 });
    // Meanwhile a write on identity b goes at once.
    expect(pacing.admit('id-b/put/1', 'id-b', 'sub', 10)).toEqual({ go: true, sleepMs: 0 });
    expect(pacing.tickets).toBe(1);
  });

  it('keeps the slot for a handed-back write: it goes when it comes back, and a newcomer queues after it', () => {
    const pacing = azure();
    pacing.admit('id-a/put/1', 'id-a', 'sub', 0);
    expect(pacing.admit('id-a/put/2', 'id-a', 'sub', 0)).toEqual({ go: false, retryAfterMs: 4000 });
    // Too early: told the remaining wait, without taking another slot.
    expect(pacing.admit('id-a/put/2', 'id-a', 'sub', 1000)).toEqual({ go: false, retryAfterMs: 3000 });
    // A newcomer for the same identity gets the slot after the held one, not the same one.
    expect(pacing.admit('id-a/put/3', 'id-a', 'sub', 3990)).toEqual({ go: false, retryAfterMs: 4010 });
    // Back on time: goes (its identity slot is due; the subscription has tokens).
    expect(pacing.admit('id-a/put/2', 'id-a', 'sub', 4000)).toEqual({ go: true, sleepMs: 0 });
    expect(pacing.admit('id-a/put/3', 'id-a', 'sub', 8000)).toEqual({ go: true, sleepMs: 0 });
    expect(pacing.tickets).toBe(0);
  });

  it('sleeps short waits in-process and hands back the subscription wait beyond the bound', () => {
    const pacing = azure();
    const at0 = ['a', 'b', 'c', 'd', 'e'].map((id) => pacing.admit(`${id}/put/x`, id, 'sub', 0));
    expect(at0).toEqual([
      { go: true, sleepMs: 0 },
      { go: true, sleepMs: 0 },
      { go: true, sleepMs: 500 },
      { go: true, sleepMs: 1000 },
      { go: false, retryAfterMs: 1500 },
    ]);
    // The fifth holds both its tokens: back at 1.5 s it goes without drawing again.
    expect(pacing.admit('e/put/x', 'e', 'sub', 1500)).toEqual({ go: true, sleepMs: 0 });
    expect(pacing.admit('f/put/x', 'f', 'sub', 1500)).toEqual({ go: true, sleepMs: 500 });
  });

  it('spaces the next write on an identity a full interval from when the last one came back', () => {
    const pacing = azure(10_000);
    expect(pacing.admit('id-a/put/1', 'id-a', 'sub', 0)).toEqual({ go: true, sleepMs: 0 });
    // The write left late and came back at 900 ms: the next may not arrive before 900 + 4000.
    pacing.completed('id-a', 900);
    expect(pacing.admit('id-a/put/2', 'id-a', 'sub', 1000)).toEqual({ go: true, sleepMs: 3900 });
    // Other identities are not affected.
    expect(pacing.admit('id-b/put/1', 'id-b', 'sub', 1000)).toEqual({ go: true, sleepMs: 0 });
  });

  it("a server's Retry-After holds back both buckets", () => {
    const pacing = azure(10_000);
    pacing.pauseUntil('id-a', 'sub', 3000, 0);
    expect(pacing.admit('id-b/put/1', 'id-b', 'sub', 0)).toEqual({ go: true, sleepMs: 3000 });
    expect(pacing.admit('id-a/put/1', 'id-a', 'sub', 0)).toEqual({ go: true, sleepMs: 3500 });
  });

  it('forgets tickets of writes that never came back', () => {
    const pacing = new WritePacing({
      perIdentity: { perSecond: 0.25, burst: 1 },
      perSubscription: { perSecond: 2, burst: 2 },
      maxInlineWaitMs: 1000,
      ticketGraceMs: 1000,
    });
    pacing.admit('id-a/put/1', 'id-a', 'sub', 0);
    pacing.admit('id-a/put/2', 'id-a', 'sub', 0);
    expect(pacing.tickets).toBe(1);
    for (let i = 0; i < 64; i++) pacing.admit(`other-${i}/put/x`, `other-${i}`, `sub-${i}`, 10_000);
    expect(pacing.tickets).toBe(0);
  });
});
