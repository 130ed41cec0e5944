// Faults of the controller itself (issue 8, "Faults"): the process SIGKILLed mid-reconcile, once
// while a fleet is being created and once while resources are deleted and changed; and leader
// failover between instances under a steady stream of changes (a SIGKILLed leader, then a leader
// stopped with SIGTERM). Each ends converged (fleetProblems in scenario.ts) and logs how long that
// took. The operator is the real CLI against the shared harness.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { type ManagedProcess, makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  applyFleetAccess,
  createFleetWorld,
  deleteAccess,
  type FleetAccess,
  type FleetWorld,
  fleetAccess,
  fleetProblems,
  patchFleetGrants,
  startOperatorProcess,
  waitForFleet,
  writeOperatorToken,
} from '../harness/scenario.ts';

const info = harnessInfo();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!info)('faults of the controller process end converged', () => {
  const run = uniqueName('fzc');
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let coordination: k8s.CoordinationV1Api;
  let emulator: AzureEmulatorClient;
  let world: FleetWorld;
  let dir: string;
  let tokenFile: string;
  let initialWriteLatencyMs = 0;
  const processes: ManagedProcess[] = [];
  const live = new Map<string, FleetAccess>();
  const gone = new Set<string>();
  /** The grants variant each identity's accesses have now (all accesses of one role agree). */
  const variants = new Map<string, number>();
  let nextIndex = 0;

  const check = () =>
    fleetProblems(info!, custom, emulator, world, { live: [...live.values()], gone: [...gone] });
  const startOperator = async (name: string, args: string[]) => {
    const proc = await startOperatorProcess(info!, {
      name,
      logDir: dir,
      tokenFile,
      clusterName: run,
      args: ['--controller', '--health-port=0', '--metrics-port=0', ...args],
    });
    processes.push(proc);
    return proc;
  };
  const running = () => processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
  const create = async () => {
    const index = nextIndex++;
    const probe = fleetAccess(world, index);
    const access = fleetAccess(world, index, variants.get(probe.identity.id) ?? 0);
    await applyFleetAccess(custom, world, access);
    live.set(access.name, access);
  };
  const remove = async (access: FleetAccess) => {
    await deleteAccess(custom, access.namespace, access.name);
    live.delete(access.name);
    gone.add(access.role);
  };
  /** Moves every live access of `identityId` to the next grants variant. */
  const changeGrants = async (identityId: string) => {
    const variant = (variants.get(identityId) ?? 0) + 1;
    variants.set(identityId, variant);
    for (const access of [...live.values()].filter((a) => a.identity.id === identityId)) {
      const changed = fleetAccess(world, Number(access.name.slice(3)), variant);
      await patchFleetGrants(custom, changed);
      live.set(changed.name, changed);
    }
  };
  const ficCount = async () =>
    (await emulator.listIdentities())
      .filter((i) => world.identities.some((w) => w.id.toLowerCase() === i.id.toLowerCase()))
      .reduce((n, i) => n + i.federatedIdentityCredentials.length, 0);

  beforeAll(async () => {
    kc = adminKubeConfig(info!);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    emulator = new AzureEmulatorClient(info!.azure.url, { ca: readFileSync(info!.caFile) });
    initialWriteLatencyMs = (await emulator.getConfig()).writeLatencyMs;
    dir = makeTempDir('faults-controller');
    world = await createFleetWorld(info!, kc, emulator, { run, namespaces: 2, identities: 4 });
    tokenFile = await writeOperatorToken(info!, kc, dir);
  });

  afterAll(async () => {
    await emulator?.setConfig({ writeLatencyMs: initialWriteLatencyMs }).catch(() => {});
    if (custom && running().length === 0) await startOperator('operator-cleanup', ['--leader-elect=false']);
    if (custom) {
      for (const access of [...live.values()]) await remove(access).catch(() => {});
      await waitForFleet('faults-controller clean-up', check, { timeoutMs: 60_000 });
    }
    for (const proc of processes) await proc.stop();
    if (dir) removeTempDir(dir);
  });

  it('SIGKILL mid-reconcile, while creating and while deleting and changing: the restarted process converges', async () => {
    // Slow FIC writes, so the kill lands while writes are in flight.
    await emulator.setConfig({ writeLatencyMs: 1500 });
    const first = await startOperator('operator-kill-1', ['--leader-elect=false']);
    for (let i = 0; i < 8; i++) await create();
    const atKill = await pollUntil(ficCount, (n) => n >= 2, 60_000, 100);
    await first.kill();
    const problemsAtKill = await check();
    const restarted = Date.now();
    const second = await startOperator('operator-kill-2', ['--leader-elect=false']);
    const created = await waitForFleet('SIGKILL while creating 8', check, {
      since: restarted,
      timeoutMs: 120_000,
    });
    expect(atKill).toBeLessThan(live.size);
    expect(problemsAtKill.length).toBeGreaterThan(0);
    expect(created.problems).toEqual([]);

    // Round two: delete two (one identity's pair: its FIC and role must go), change another
    // identity's grants, add two; kill while the deletes and revokes are under way.
    const pair = [...live.values()].filter((a) => a.identity.id === world.identities[0]!.id);
    for (const access of pair) await remove(access);
    await changeGrants(world.identities[1]!.id);
    await create();
    await create();
    await sleep(1500);
    const problemsAtSecondKill = await check();
    await second.kill();
    const restartedAgain = Date.now();
    await startOperator('operator-kill-3', ['--leader-elect=false']);
    const changed = await waitForFleet('SIGKILL while deleting 2, changing 2, creating 2', check, {
      since: restartedAgain,
      timeoutMs: 120_000,
    });
    console.log(
      `[faults] SIGKILL: first kill with ${atKill} FICs of ${8} and ${problemsAtKill.length} things unconverged; ` +
        `second kill with ${problemsAtSecondKill.length} things unconverged`,
    );
    expect(problemsAtSecondKill.length).toBeGreaterThan(0);
    expect(changed.problems).toEqual([]);
    await emulator.setConfig({ writeLatencyMs: initialWriteLatencyMs });
  });

  it('leader failover between instances under a steady stream of changes: converges, no duplicate', async () => {
    for (const proc of running()) await proc.stop();
    const lease = { namespace: info!.azure.operator.namespace, name: `${run}-leader` };
    const electionArgs = [
      '--leader-elect=true',
      `--leader-election-id=${lease.name}`,
      '--leader-election-lease-duration=4',
      '--leader-election-renew-deadline=3',
      '--leader-election-retry-period=1',
    ];
    const readLease = () => coordination.readNamespacedLease(lease).catch(() => undefined);
    const holderProcess = async () => {
      const holder = (await readLease())?.spec?.holderIdentity;
      return holder
        ? running().find((p) => readFileSync(p.logFile, 'utf8').includes(`"identity":"${holder}"`))
        : undefined;
    };
    await startOperator('operator-elect-a', electionArgs);
    await startOperator('operator-elect-b', electionArgs);
    const firstLeader = await pollUntil(holderProcess, (p) => p !== undefined, 30_000, 200);
    expect(firstLeader).toBeDefined();
    const transitionsBefore = (await readLease())?.spec?.leaseTransitions ?? 0;

    // The stream: a change every 600 ms for about 20 s, cycling create / change grants / delete.
    let streaming = true;
    let changes = 0;
    const stream = (async () => {
      for (let step = 0; streaming; step++) {
        const kind = step % 3;
        if (kind === 0 || live.size < 4) await create();
        else if (kind === 1) await changeGrants(world.identities[step % world.identities.length]!.id);
        else await remove([...live.values()][step % live.size]!);
        changes += 1;
        await sleep(600);
      }
    })();

    await sleep(5000);
    // Failover 1: the leader crashes; the standby takes over once the lease expires. A new
    // standby joins, as a restarted pod would.
    const killedAt = Date.now();
    await firstLeader!.kill();
    const secondLeader = await pollUntil(
      holderProcess,
      (p) => p !== undefined && p !== firstLeader,
      30_000,
      200,
    );
    const firstHandoverMs = Date.now() - killedAt;
    expect(secondLeader).toBeDefined();
    await startOperator('operator-elect-c', electionArgs);
    await sleep(5000);
    // Failover 2: a rolling update stops the leader with SIGTERM; it releases the lease.
    const stoppedAt = Date.now();
    await secondLeader!.stop();
    const thirdLeader = await pollUntil(
      holderProcess,
      (p) => p !== undefined && p !== firstLeader && p !== secondLeader,
      30_000,
      200,
    );
    const secondHandoverMs = Date.now() - stoppedAt;
    expect(thirdLeader).toBeDefined();
    await sleep(5000);
    streaming = false;
    await stream;
    const streamEnded = Date.now();

    const result = await waitForFleet(`leader failover x2 under a stream of ${changes} changes`, check, {
      since: streamEnded,
      timeoutMs: 120_000,
    });
    const transitions = ((await readLease())?.spec?.leaseTransitions ?? 0) - transitionsBefore;
    console.log(
      `[faults] leader failover: SIGKILLed leader replaced in ${firstHandoverMs} ms, SIGTERMed leader in ${secondHandoverMs} ms; ` +
        `${changes} changes streamed; ${live.size} resources live; converged ${result.ms} ms after the stream ended`,
    );
    expect(result.problems).toEqual([]);
    expect(transitions).toBeGreaterThanOrEqual(2);
    expect(changes).toBeGreaterThan(15);
    // One leader at a time: the stopped leader said it released the lease, the standby never led
    // before the lease passed to it.
    expect(readFileSync(secondLeader!.logFile, 'utf8')).toContain('released the lease');
  });
});
