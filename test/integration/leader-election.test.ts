// Leader election against the harness's real kube-apiserver: one leader of two, a graceful
// handover at the next poll, a crashed leader replaced once its lease expires, and the Lease
// object as the apiserver stores it. Short timings (lease 3 s, renew 2 s, retry 0.5 s) keep it fast.
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LeaderCallbacks, LeaderElector, parseMicroTime } from '../../src/controller/leader-election.ts';
import { adminKubeConfig, harnessInfo, pollFor, sleep, uniqueName } from '../harness/context.ts';

const harness = harnessInfo();
const logger = pino({ level: 'silent' });
const timings = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

describe.skipIf(!harness)('leader election on a real Lease', () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let coordination: k8s.CoordinationV1Api;
  const namespace = uniqueName('leader');
  const electors: LeaderElector[] = [];

  function elector(name: string, identity: string): LeaderElector {
    const e = new LeaderElector({ kubeConfig: kc, namespace, name, identity, timings, logger });
    electors.push(e);
    return e;
  }

  function track(): { cb: LeaderCallbacks; started: number; stopped: number } {
    const state = {
      started: 0,
      stopped: 0,
      cb: {
        onStartedLeading: () => {
          state.started += 1;
        },
        onStoppedLeading: () => {
          state.stopped += 1;
        },
      } as LeaderCallbacks,
    };
    return state;
  }

  const readLease = (name: string) => coordination.readNamespacedLease({ namespace, name });

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    core = kc.makeApiClient(k8s.CoreV1Api);
    coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await Promise.all(electors.map((e) => e.stop({ release: false })));
    await core?.deleteNamespace({ name: namespace }).catch(() => {});
  });

  it('the apiserver wants six fractional digits in a MicroTime, which client-node does not send for a Date', async () => {
    const body = (renewTime: unknown): k8s.V1Lease => ({
      metadata: { name: uniqueName('micro') },
      spec: { holderIdentity: 'x', renewTime: renewTime as k8s.V1MicroTime },
    });
    // A plain Date goes out as toISOString(): three digits.
    await expect(
      coordination.createNamespacedLease({ namespace, body: body(new Date()) }),
    ).rejects.toMatchObject({ code: 400 });
    const created = await coordination.createNamespacedLease({
      namespace,
      body: body('2026-11-22T10:00:00.123456Z'),
    });
    // Read back as the string the apiserver sent, microseconds intact.
    expect(created.spec?.renewTime).toBe('2026-11-22T10:00:00.123456Z');
  });

  it('elects exactly one of two candidates and writes a correct Lease', async () => {
    const name = uniqueName('lease');
    const a = elector(name, 'replica-a');
    const b = elector(name, 'replica-b');
    const ta = track();
    const tb = track();
    void a.run(ta.cb);
    void b.run(tb.cb);
    expect(await pollFor(() => a.isLeader || b.isLeader, 5000, 10)).toBe(true);
    // Several renew periods later, still exactly one.
    await sleep(4 * timings.retryPeriodMs);
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
    expect(ta.started + tb.started).toBe(1);
    const leader = a.isLeader ? a : b;

    const lease = await readLease(name);
    const spec = lease.spec!;
    expect(spec.holderIdentity).toBe(leader.identity);
    expect(spec.leaseDurationSeconds).toBe(3);
    expect(spec.leaseTransitions).toBe(0);
    expect(typeof spec.acquireTime).toBe('string');
    expect(String(spec.acquireTime)).toMatch(MICRO_TIME);
    expect(String(spec.renewTime)).toMatch(MICRO_TIME);
    // Renewed since acquisition, recently.
    const acquired = parseMicroTime(spec.acquireTime)!;
    const renewed = parseMicroTime(spec.renewTime)!;
    expect(renewed).toBeGreaterThan(acquired);
    expect(Date.now() - renewed).toBeLessThan(timings.retryPeriodMs + 500);
  });

  it('hands over within about a retry period when the leader stops gracefully', async () => {
    const name = uniqueName('lease');
    const a = elector(name, 'replica-a');
    const b = elector(name, 'replica-b');
    const ta = track();
    const stopped = a.run(ta.cb);
    expect(await pollFor(() => a.isLeader, 5000, 10)).toBe(true);
    void b.run(track().cb);
    await sleep(2 * timings.retryPeriodMs);
    expect(b.isLeader).toBe(false);

    const t0 = performance.now();
    await a.stop();
    await stopped;
    expect(ta.stopped).toBe(1);
    const released = (await readLease(name)).spec!;
    expect(released.holderIdentity).toBeUndefined();
    expect(await pollFor(() => b.isLeader, 5000, 10)).toBe(true);
    const handoverMs = performance.now() - t0;
    console.log(`[leader-election] graceful handover: ${handoverMs.toFixed(0)} ms (retry period 500 ms)`);
    expect(handoverMs).toBeLessThan(timings.retryPeriodMs * 1.2 + 1000);

    const spec = (await readLease(name)).spec!;
    expect(spec.holderIdentity).toBe(b.identity);
    expect(spec.leaseTransitions).toBe(1);
    expect(spec.leaseDurationSeconds).toBe(3);
    expect(String(spec.acquireTime)).toMatch(MICRO_TIME);
  });

  it('hands over after the lease expires when the leader dies without releasing', async () => {
    const name = uniqueName('lease');
    const a = elector(name, 'replica-a');
    const b = elector(name, 'replica-b');
    void a.run(track().cb);
    expect(await pollFor(() => a.isLeader, 5000, 10)).toBe(true);
    const tb = track();
    void b.run(tb.cb);
    await sleep(3 * timings.retryPeriodMs);

    // "Kill" the leader: its renewals stop and nothing is released.
    await a.stop({ release: false });
    const t0 = performance.now();
    const abandoned = (await readLease(name)).spec!;
    expect(abandoned.holderIdentity).toBe(a.identity);
    const lastRenew = parseMicroTime(abandoned.renewTime)!;

    expect(await pollFor(() => b.isLeader, timings.leaseDurationMs + 3000, 10)).toBe(true);
    const handoverMs = performance.now() - t0;
    const spec = (await readLease(name)).spec!;
    const sinceLastRenewMs = parseMicroTime(spec.acquireTime)! - lastRenew;
    console.log(
      `[leader-election] crash handover: ${handoverMs.toFixed(0)} ms after the kill, ` +
        `${sinceLastRenewMs} ms after the last renewal (lease 3000 ms, retry 500 ms)`,
    );
    // Not before the lease expired, and at the first poll after it did.
    expect(sinceLastRenewMs).toBeGreaterThan(timings.leaseDurationMs);
    expect(sinceLastRenewMs).toBeLessThan(timings.leaseDurationMs + timings.retryPeriodMs * 1.2 + 1000);
    expect(spec.holderIdentity).toBe(b.identity);
    expect(spec.leaseTransitions).toBe(1);
    expect(tb.started).toBe(1);
  });
});
