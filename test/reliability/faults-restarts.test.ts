// Restarts of the parts the controller depends on (issue 8, "Faults"): PostgreSQL crashed and
// restarted mid-reconcile; the kube-apiserver crashed and restarted (every watch dropped); and the
// apiserver restarted over a compacted etcd while the controller was frozen, so that the
// controller's watches resume from a resourceVersion that no longer exists, get 410 Gone and must
// relist to see what changed meanwhile. Each ends converged (fleetProblems in scenario.ts) and
// logs how long that took.
//
// Restarting needs the harness's process handles, which the shared harness of the global setup
// keeps in another process; so this file starts a harness of its own. Its CA is new, and this
// worker's NODE_EXTRA_CA_CERTS (read at process start) names the shared harness's bundle: nothing
// here may rely on it. Nothing does: the operator runs as a child process given this harness's CA
// file, the Kubernetes client trusts the CA in the kubeconfig, the PostgreSQL superuser URL names
// its root certificate, and the emulator's control client is given the CA. No @azure/identity call
// runs in this worker.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_PLURAL } from '../../src/api/constants.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { FleetRun } from '../harness/fleet.ts';
import { type Harness, type HarnessInfo, startHarness } from '../harness/harness.ts';
import { API } from '../harness/kube.ts';
import type { ManagedProcess } from '../harness/processes.ts';
import { rolesOfPrincipal, waitForFleet } from '../harness/scenario.ts';

// Only to skip where the harness cannot start (no control-plane binaries outside CI).
const shared = harnessInfo();

/**
 * Watches EntraDatabaseAccess from `resourceVersion` and resolves with what the apiserver says
 * first: `410` when it answers Gone (as an ERROR event or as the response status), else `ok`.
 */
async function watchFrom(kc: k8s.KubeConfig, resourceVersion: string): Promise<'410' | 'ok' | string> {
  const watch = new k8s.Watch(kc);
  return new Promise((resolve) => {
    let settled = false;
    const settle = (value: string) => {
      if (settled) return;
      settled = true;
      resolve(value);
      void request.then((r) => r.abort());
    };
    const request = watch.watch(
      `/apis/${API.group}/${API.version}/${ACCESS_PLURAL}`,
      { resourceVersion },
      (phase, object: { code?: number }) =>
        settle(phase === 'ERROR' && object?.code === 410 ? '410' : `ok (${phase})`),
      (error: { statusCode?: number } | null) =>
        settle(error?.statusCode === 410 ? '410' : `closed: ${String(error)}`),
    );
    setTimeout(() => settle('ok (no event)'), 5000);
  });
}

describe.skipIf(!shared)('restarts of PostgreSQL and the apiserver end converged', () => {
  const run = uniqueName('fzr');
  let harness: Harness;
  let info: HarnessInfo;
  let kc: k8s.KubeConfig;
  let fleet: FleetRun;
  let operator: ManagedProcess | undefined;

  beforeAll(async () => {
    harness = await startHarness({ installCrds: true });
    info = harness.info;
    kc = adminKubeConfig(info);
    // 3 identities: with Azure's pacing of FIC writes per identity, the second access of each
    // identity waits its turn, so PostgreSQL work is still to come when the first role appears.
    fleet = await FleetRun.create(info, kc, { run, namespaces: 2, identities: 3 });
    // No leader election: an apiserver down for longer than the renew deadline makes a leader
    // step down and exit (by design); this file is about the watches and the database.
    operator = await fleet.startOperator('operator', ['--leader-elect=false']);
  });

  afterAll(async () => {
    // The fleet goes with this file's own harness: nothing to clean up in it first.
    await fleet?.stop();
    await harness?.stop();
  });

  it('PostgreSQL crashes mid-reconcile and comes back after 3 s: converges', async () => {
    for (let i = 0; i < 6; i++) await fleet.create();
    // Crash as soon as the first role exists: the others are still to be created and granted.
    await pollUntil(
      async () =>
        (await Promise.all(fleet.world.identities.map((i) => rolesOfPrincipal(info, i.principalId)))).flat(),
      (roles) => roles.length > 0,
      60_000,
      50,
    );
    const problemsAtCrash = await fleet.check();
    const crashed = Date.now();
    await harness.restartPostgres({ crash: true, downMs: 3000 });
    const result = await waitForFleet('PostgreSQL crashed mid-reconcile, down 3 s', fleet.check, {
      since: crashed,
      timeoutMs: 120_000,
    });
    console.log(`[faults] PostgreSQL crash: ${problemsAtCrash.length} things unconverged at the crash`);
    expect(problemsAtCrash.length).toBeGreaterThan(0);
    expect(result.problems).toEqual([]);
    const log = readFileSync(operator!.logFile, 'utf8');
    expect(log).toMatch(/ECONNREFUSED|terminating connection|Connection terminated|connect/);
  });

  it('the apiserver crashes while changes are being reconciled and comes back: converges', async () => {
    await fleet.create();
    await fleet.create();
    await fleet.remove(fleet.live.get('acc0')!);
    await fleet.changeGrants(fleet.world.identities[1]!.id);
    const crashed = Date.now();
    await harness.restartApiServer({ crash: true, downMs: 3000 });
    const result = await waitForFleet('apiserver crashed (watches dropped), down 3 s', fleet.check, {
      since: crashed,
      timeoutMs: 120_000,
    });
    expect(result.problems).toEqual([]);
    expect(operator!.child.exitCode).toBeNull();
  });

  it('the apiserver restarts over a compacted etcd while the controller is frozen: 410 Gone, relist, converges', async () => {
    const pid = operator!.child.pid!;
    // What the controller's watches last saw is at most this resourceVersion.
    const listed = (await fleet.custom.listClusterCustomObject({ ...API, plural: ACCESS_PLURAL })) as {
      metadata: { resourceVersion: string };
    };
    process.kill(pid, 'SIGSTOP');
    let frozen = true;
    try {
      // Changes the frozen controller's watches miss: two new, two deleted (only their
      // finalizer keeps them until the controller cleans up), one identity's grants changed.
      await fleet.create();
      await fleet.create();
      for (const access of [...fleet.live.values()]
        .filter((a) => a.identity.id === fleet.world.identities[0]!.id)
        .slice(0, 2))
        await fleet.remove(access);
      await fleet.changeGrants(fleet.world.identities[2]!.id);
      const restarted = Date.now();
      await harness.restartApiServer({ compactEtcd: true });
      // The resourceVersion the controller would resume from is gone.
      // (A fresh apiserver answers watches 429 until its watch cache is ready: ask again then.)
      const answer = await pollUntil(
        () => watchFrom(kc, listed.metadata.resourceVersion),
        (a) => !a.includes('Too Many Requests'),
        30_000,
        250,
      );
      expect(answer).toBe('410');
      process.kill(pid, 'SIGCONT');
      frozen = false;
      const result = await waitForFleet('apiserver restarted over compacted etcd, 410 relist', fleet.check, {
        since: restarted,
        timeoutMs: 120_000,
      });
      expect(result.problems).toEqual([]);
    } finally {
      if (frozen) process.kill(pid, 'SIGCONT');
    }
    // And the controller keeps watching after the relist: a change now is reconciled too.
    const since = Date.now();
    await fleet.create();
    const after = await waitForFleet('a change after the relist', fleet.check, { since, timeoutMs: 60_000 });
    expect(after.problems).toEqual([]);
  });
});
