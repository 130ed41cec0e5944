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
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { type Harness, type HarnessInfo, startHarness } from '../harness/harness.ts';
import { type ManagedProcess, makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  API,
  applyFleetAccess,
  createFleetWorld,
  deleteAccess,
  type FleetAccess,
  type FleetWorld,
  fleetAccess,
  fleetProblems,
  patchFleetGrants,
  rolesOfPrincipal,
  startOperatorProcess,
  waitForFleet,
  writeOperatorToken,
} from '../harness/scenario.ts';

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
  let custom: k8s.CustomObjectsApi;
  let emulator: AzureEmulatorClient;
  let world: FleetWorld;
  let dir: string;
  let tokenFile: string;
  let operator: ManagedProcess | undefined;
  const live = new Map<string, FleetAccess>();
  const gone = new Set<string>();
  let nextIndex = 0;
  /** The grants variant each identity's accesses have now (all accesses of one role agree). */
  const variants = new Map<string, number>();

  const check = () =>
    fleetProblems(info, custom, emulator, world, { live: [...live.values()], gone: [...gone] });
  const create = async () => {
    const index = nextIndex++;
    const access = fleetAccess(world, index, variants.get(fleetAccess(world, index).identity.id) ?? 0);
    await applyFleetAccess(custom, world, access);
    live.set(access.name, access);
  };
  const remove = async (access: FleetAccess) => {
    await deleteAccess(custom, access.namespace, access.name);
    live.delete(access.name);
    gone.add(access.role);
  };
  const changeGrants = async (identity: FleetWorld['identities'][number]) => {
    const variant = (variants.get(identity.id) ?? 0) + 1;
    variants.set(identity.id, variant);
    for (const access of [...live.values()].filter((a) => a.identity.id === identity.id)) {
      const changed = fleetAccess(world, Number(access.name.slice(3)), variant);
      await patchFleetGrants(custom, changed);
      live.set(changed.name, changed);
    }
  };

  beforeAll(async () => {
    harness = await startHarness({ installCrds: true });
    info = harness.info;
    kc = adminKubeConfig(info);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    emulator = new AzureEmulatorClient(info.azure.url, { ca: readFileSync(info.caFile) });
    dir = makeTempDir('faults-restarts');
    // 3 identities: with Azure's pacing of FIC writes per identity, the second access of each
    // identity waits its turn, so PostgreSQL work is still to come when the first role appears.
    world = await createFleetWorld(info, kc, emulator, { run, namespaces: 2, identities: 3 });
    tokenFile = await writeOperatorToken(info, kc, dir);
    operator = await startOperatorProcess(info, {
      name: 'operator',
      logDir: dir,
      tokenFile,
      clusterName: run,
      // No leader election: an apiserver down for longer than the renew deadline makes a leader
      // step down and exit (by design); this file is about the watches and the database.
      args: ['--controller', '--leader-elect=false', '--health-port=0', '--metrics-port=0'],
    });
  });

  afterAll(async () => {
    await operator?.stop();
    if (dir) removeTempDir(dir);
    await harness?.stop();
  });

  it('PostgreSQL crashes mid-reconcile and comes back after 3 s: converges', async () => {
    for (let i = 0; i < 6; i++) await create();
    // Crash as soon as the first role exists: the others are still to be created and granted.
    await pollUntil(
      async () =>
        (await Promise.all(world.identities.map((i) => rolesOfPrincipal(info, i.principalId)))).flat(),
      (roles) => roles.length > 0,
      60_000,
      50,
    );
    const problemsAtCrash = await check();
    const crashed = Date.now();
    await harness.restartPostgres({ crash: true, downMs: 3000 });
    const result = await waitForFleet('PostgreSQL crashed mid-reconcile, down 3 s', check, {
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
    await create();
    await create();
    await remove(live.get('acc0')!);
    await changeGrants(world.identities[1]!);
    const crashed = Date.now();
    await harness.restartApiServer({ crash: true, downMs: 3000 });
    const result = await waitForFleet('apiserver crashed (watches dropped), down 3 s', check, {
      since: crashed,
      timeoutMs: 120_000,
    });
    expect(result.problems).toEqual([]);
    expect(operator!.child.exitCode).toBeNull();
  });

  it('the apiserver restarts over a compacted etcd while the controller is frozen: 410 Gone, relist, converges', async () => {
    const pid = operator!.child.pid!;
    // What the controller's watches last saw is at most this resourceVersion.
    const listed = (await custom.listClusterCustomObject({ ...API, plural: ACCESS_PLURAL })) as {
      metadata: { resourceVersion: string };
    };
    process.kill(pid, 'SIGSTOP');
    let frozen = true;
    try {
      // Changes the frozen controller's watches miss: two new, two deleted (only their
      // finalizer keeps them until the controller cleans up), one identity's grants changed.
      await create();
      await create();
      for (const access of [...live.values()]
        .filter((a) => a.identity.id === world.identities[0]!.id)
        .slice(0, 2))
        await remove(access);
      await changeGrants(world.identities[2]!);
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
      const result = await waitForFleet('apiserver restarted over compacted etcd, 410 relist', check, {
        since: restarted,
        timeoutMs: 120_000,
      });
      expect(result.problems).toEqual([]);
    } finally {
      if (frozen) process.kill(pid, 'SIGCONT');
    }
    // And the controller keeps watching after the relist: a change now is reconciled too.
    const since = Date.now();
    await create();
    const after = await waitForFleet('a change after the relist', check, { since, timeoutMs: 60_000 });
    expect(after.problems).toEqual([]);
  });
});
