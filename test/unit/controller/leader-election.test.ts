import type { V1Lease } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_TIMINGS,
  defaultIdentity,
  formatMicroTime,
  type LeaderCallbacks,
  LeaderElector,
  type LeaseApi,
  parseMicroTime,
} from '../../../src/controller/leader-election.ts';
import { createControllerMetrics } from '../../../src/observability/controller-metrics.ts';

const logger = pino({ level: 'silent' });
const timings = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };

const httpError = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code });

/** A Lease store with the apiserver's rules that matter here: 404, 409 on create and on stale writes. */
class MemoryLeases implements LeaseApi {
  lease: V1Lease | undefined;
  #version = 0;
  failure: Error | undefined;
  hang = false;
  writes: V1Lease[] = [];

  async read(): Promise<V1Lease | undefined> {
    await this.#gate();
    return structuredClone(this.lease);
  }

  async create(lease: V1Lease): Promise<V1Lease> {
    await this.#gate();
    if (this.lease) throw httpError(409);
    return this.#store(lease);
  }

  async replace(lease: V1Lease): Promise<V1Lease> {
    await this.#gate();
    if (!this.lease) throw httpError(404);
    if (lease.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) throw httpError(409);
    return this.#store(lease);
  }

  #store(lease: V1Lease): V1Lease {
    this.#version += 1;
    this.lease = {
      ...structuredClone(lease),
      metadata: { ...lease.metadata, resourceVersion: `${this.#version}` },
    };
    this.writes.push(structuredClone(this.lease));
    return structuredClone(this.lease);
  }

  async #gate(): Promise<void> {
    if (this.hang) await new Promise(() => {});
    await Promise.resolve();
    if (this.failure) throw this.failure;
  }
}

function elector(
  leases: LeaseApi,
  identity: string,
  extra: Partial<ConstructorParameters<typeof LeaderElector>[0]> = {},
) {
  return new LeaderElector({
    leaseApi: leases,
    namespace: 'entra-access',
    name: 'entra-access-controller',
    identity,
    timings,
    jitter: 0,
    logger,
    ...extra,
  });
}

function callbacks() {
  const signals: AbortSignal[] = [];
  const stopped = vi.fn();
  const cb: LeaderCallbacks = {
    onStartedLeading: (signal) => {
      signals.push(signal);
    },
    onStoppedLeading: stopped,
  };
  return { cb, signals, stopped };
}

/** Two candidates on one lease store: `a` runs and takes the lease, then `b` runs for `waitMs`. */
async function aLeadsThenBWaits(waitMs: number) {
  const leases = new MemoryLeases();
  const a = elector(leases, 'a');
  const b = elector(leases, 'b');
  const first = callbacks();
  const aRunning = a.run(first.cb);
  await vi.advanceTimersByTimeAsync(0);
  const bRunning = b.run(callbacks().cb);
  await vi.advanceTimersByTimeAsync(waitMs);
  return { leases, a, b, first, aRunning, bRunning };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-11-22T10:00:00.000Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('MicroTime', () => {
  it('formats with six fractional digits and parses strings and Dates', () => {
    expect(formatMicroTime(new Date('2026-11-22T10:00:00Z'))).toBe('2026-11-22T10:00:00.000000Z');
    expect(formatMicroTime(new Date('2026-11-22T10:00:00.123Z'))).toBe('2026-11-22T10:00:00.123000Z');
    expect(parseMicroTime('2026-11-22T10:00:00.123456Z')).toBe(Date.parse('2026-11-22T10:00:00.123Z'));
    expect(parseMicroTime(new Date(5))).toBe(5);
    expect(parseMicroTime('not a time')).toBeUndefined();
    expect(parseMicroTime(undefined)).toBeUndefined();
  });
});

describe('LeaderElector', () => {
  it("uses controller-runtime's timings and a unique hostname-based identity by default", () => {
    expect(DEFAULT_TIMINGS).toEqual({
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
    const e = new LeaderElector({ leaseApi: new MemoryLeases(), namespace: 'n', name: 'l', logger });
    expect(e.timings).toEqual(DEFAULT_TIMINGS);
    expect(defaultIdentity()).not.toBe(defaultIdentity());
    expect(e.identity).toMatch(/_[0-9a-f-]{36}$/);
  });

  it('rejects inconsistent timings', () => {
    const leases = new MemoryLeases();
    const bad = (t: Partial<typeof timings>) => () => elector(leases, 'a', { timings: { ...timings, ...t } });
    expect(bad({ renewDeadlineMs: 3000 })).toThrow(/leaseDuration/);
    expect(bad({ retryPeriodMs: 2000 })).toThrow(/renewDeadline/);
    expect(bad({ leaseDurationMs: 3500 })).toThrow(/whole seconds/);
    expect(bad({ retryPeriodMs: 0 })).toThrow(/retryPeriod/);
  });

  it('creates an absent lease, leads, and renews every retry period', async () => {
    const leases = new MemoryLeases();
    const registry = new Registry();
    const metrics = createControllerMetrics(registry);
    const a = elector(leases, 'a', { metrics });
    const { cb, signals } = callbacks();
    void a.run(cb);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.isLeader).toBe(true);
    expect(signals).toHaveLength(1);
    expect(leases.lease?.spec).toEqual({
      holderIdentity: 'a',
      leaseDurationSeconds: 3,
      acquireTime: '2026-11-22T10:00:00.000000Z',
      renewTime: '2026-11-22T10:00:00.000000Z',
      leaseTransitions: 0,
    });
    expect(await registry.metrics()).toMatch(
      /leader_election_master_status\{name="entra-access-controller"\} 1/,
    );

    await vi.advanceTimersByTimeAsync(1000);
    expect(leases.writes).toHaveLength(3);
    expect(leases.lease?.spec).toMatchObject({
      holderIdentity: 'a',
      acquireTime: '2026-11-22T10:00:00.000000Z',
      renewTime: '2026-11-22T10:00:01.000000Z',
      leaseTransitions: 0,
    });
  });

  it('keeps a second candidate waiting while the lease is valid', async () => {
    const { leases, a, b } = await aLeadsThenBWaits(30_000);
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    expect(leases.lease?.spec?.holderIdentity).toBe('a');
  });

  it('lets exactly one of two racing candidates win', async () => {
    const leases = new MemoryLeases();
    const a = elector(leases, 'a');
    const b = elector(leases, 'b');
    void a.run(callbacks().cb);
    void b.run(callbacks().cb);
    await vi.advanceTimersByTimeAsync(5000);
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
  });

  it('hands over at the next poll after a graceful stop, which releases the lease', async () => {
    const { leases, a, b, first, aRunning } = await aLeadsThenBWaits(100);

    await a.stop();
    await aRunning;
    expect(first.stopped).toHaveBeenCalledTimes(1);
    expect(first.signals[0]?.aborted).toBe(true);
    expect(leases.lease?.spec?.holderIdentity).toBeUndefined();
    expect(leases.lease?.spec?.leaseDurationSeconds).toBe(1);

    const stoppedAt = Date.now();
    while (!b.isLeader) await vi.advanceTimersByTimeAsync(10);
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(timings.retryPeriodMs);
    expect(leases.lease?.spec).toMatchObject({
      holderIdentity: 'b',
      leaseDurationSeconds: 3,
      leaseTransitions: 1,
    });
  });

  it('takes over an abandoned lease only once it has expired', async () => {
    const { leases, a, b } = await aLeadsThenBWaits(1200);
    const lastRenew = parseMicroTime(leases.lease?.spec?.renewTime)!;
    await a.stop({ release: false });
    expect(leases.lease?.spec?.holderIdentity).toBe('a');

    while (!b.isLeader) await vi.advanceTimersByTimeAsync(10);
    const tookOver = parseMicroTime(leases.lease?.spec?.acquireTime)!;
    expect(tookOver - lastRenew).toBeGreaterThan(timings.leaseDurationMs);
    expect(tookOver - lastRenew).toBeLessThanOrEqual(timings.leaseDurationMs + timings.retryPeriodMs);
    expect(leases.lease?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('gives up leadership when renewals fail for the renew deadline, before the lease expires', async () => {
    const leases = new MemoryLeases();
    const registry = new Registry();
    const a = elector(leases, 'a', { metrics: createControllerMetrics(registry) });
    const { cb, signals, stopped } = callbacks();
    let resolved = false;
    void a.run(cb).then(() => {
      resolved = true;
    });
    await vi.advanceTimersByTimeAsync(1000);
    const lastRenew = parseMicroTime(leases.lease?.spec?.renewTime)!;
    leases.failure = httpError(500);

    while (a.isLeader) await vi.advanceTimersByTimeAsync(10);
    const lostAfter = Date.now() - lastRenew;
    expect(lostAfter).toBeGreaterThanOrEqual(timings.renewDeadlineMs);
    expect(lostAfter).toBeLessThan(timings.leaseDurationMs);
    expect(stopped).toHaveBeenCalledTimes(1);
    expect(signals[0]?.aborted).toBe(true);
    expect(resolved).toBe(true);
    expect(await registry.metrics()).toMatch(
      /leader_election_master_status\{name="entra-access-controller"\} 0/,
    );

    // It does not campaign again on its own.
    leases.failure = undefined;
    const writes = leases.writes.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(leases.writes).toHaveLength(writes);
  });

  it('gives up in time even when a renewal request hangs', async () => {
    const leases = new MemoryLeases();
    const a = elector(leases, 'a');
    const { cb, stopped } = callbacks();
    void a.run(cb);
    await vi.advanceTimersByTimeAsync(0);
    leases.hang = true;
    await vi.advanceTimersByTimeAsync(timings.renewDeadlineMs + 10);
    expect(a.isLeader).toBe(false);
    expect(stopped).toHaveBeenCalledTimes(1);
  });

  it('steps down at once when it finds the lease held by someone else', async () => {
    const leases = new MemoryLeases();
    const a = elector(leases, 'a');
    const { cb, stopped } = callbacks();
    void a.run(cb);
    await vi.advanceTimersByTimeAsync(0);
    const stamp = formatMicroTime(new Date());
    await leases.replace({
      ...leases.lease!,
      spec: { ...leases.lease!.spec, holderIdentity: 'intruder', renewTime: stamp as never },
    });
    await vi.advanceTimersByTimeAsync(timings.retryPeriodMs);
    expect(a.isLeader).toBe(false);
    expect(stopped).toHaveBeenCalledTimes(1);
    expect(leases.lease?.spec?.holderIdentity).toBe('intruder');
  });

  it('steps down and releases when its leader work fails to start', async () => {
    const leases = new MemoryLeases();
    const a = elector(leases, 'a');
    const stopped = vi.fn();
    const done = a.run({
      onStartedLeading: async () => {
        throw new Error('cannot start controllers');
      },
      onStoppedLeading: stopped,
    });
    await vi.advanceTimersByTimeAsync(0);
    await done;
    expect(a.isLeader).toBe(false);
    expect(stopped).toHaveBeenCalledTimes(1);
    expect(leases.lease?.spec?.holderIdentity).toBeUndefined();
  });

  it('stops campaigning without touching a lease it does not hold', async () => {
    const { leases, a, b, bRunning } = await aLeadsThenBWaits(600);
    const writes = leases.writes.length;
    await b.stop();
    await bRunning;
    expect(leases.writes).toHaveLength(writes);
    expect(leases.lease?.spec?.holderIdentity).toBe('a');
    expect(() => b.run(callbacks().cb)).not.toThrow();
    expect(() => b.run(callbacks().cb)).toThrow(/already running/);
    await b.stop();
    await a.stop();
  });
});
