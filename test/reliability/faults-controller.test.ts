// Faults of the controller itself (issue 8, "Faults"): the process SIGKILLed mid-reconcile, once
// while a fleet is being created and once while resources are deleted and changed; and leader
// failover between instances under a steady stream of changes (a SIGKILLed leader, then a leader
// stopped with SIGTERM). Each ends converged (fleetProblems in scenario.ts) and logs how long that
// took. The operator is the real CLI against the shared harness.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeConfig, harnessInfo, pollUntil, sleep, uniqueName } from '../harness/context.ts';
import { FleetRun } from '../harness/fleet.ts';
import { waitForFleet } from '../harness/scenario.ts';

const info = harnessInfo();

describe.skipIf(!info)('faults of the controller process end converged', () => {
  const run = uniqueName('fzc');
  let fleet: FleetRun;
  let coordination: k8s.CoordinationV1Api;
  let initialWriteLatencyMs = 0;

  const ficCount = async () =>
    (await fleet.emulator.listIdentities())
      .filter((i) => fleet.world.identities.some((w) => w.id.toLowerCase() === i.id.toLowerCase()))
      .reduce((n, i) => n + i.federatedIdentityCredentials.length, 0);

  beforeAll(async () => {
    const kc = adminKubeConfig(info!);
    coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    fleet = await FleetRun.create(info!, kc, { run, namespaces: 2, identities: 4 });
    initialWriteLatencyMs = (await fleet.emulator.getConfig()).writeLatencyMs;
  });

  afterAll(async () => {
    await fleet?.emulator.setConfig({ writeLatencyMs: initialWriteLatencyMs }).catch(() => {});
    await fleet?.cleanUp('faults-controller');
  });

  it('SIGKILL mid-reconcile, while creating and while deleting and changing: the restarted process converges', async () => {
    // Slow FIC writes, so the kill lands while writes are in flight.
    await fleet.emulator.setConfig({ writeLatencyMs: 1500 });
    const first = await fleet.startOperator('operator-kill-1', ['--leader-elect=false']);
    for (let i = 0; i < 8; i++) await fleet.create();
    const atKill = await pollUntil(ficCount, (n) => n >= 2, 60_000, 100);
    await first.kill();
    const problemsAtKill = await fleet.check();
    const restarted = Date.now();
    const second = await fleet.startOperator('operator-kill-2', ['--leader-elect=false']);
    const created = await waitForFleet('SIGKILL while creating 8', fleet.check, {
      since: restarted,
      timeoutMs: 120_000,
    });
    expect(atKill).toBeLessThan(fleet.live.size);
    expect(problemsAtKill.length).toBeGreaterThan(0);
    expect(created.problems).toEqual([]);

    // Round two: delete two (one identity's pair: its FIC and role must go), change another
    // identity's grants, add two; kill while the deletes and revokes are under way.
    const pair = [...fleet.live.values()].filter((a) => a.identity.id === fleet.world.identities[0]!.id);
    for (const access of pair) await fleet.remove(access);
    await fleet.changeGrants(fleet.world.identities[1]!.id);
    await fleet.create();
    await fleet.create();
    await sleep(1500);
    const problemsAtSecondKill = await fleet.check();
    await second.kill();
    const restartedAgain = Date.now();
    await fleet.startOperator('operator-kill-3', ['--leader-elect=false']);
    const changed = await waitForFleet('SIGKILL while deleting 2, changing 2, creating 2', fleet.check, {
      since: restartedAgain,
      timeoutMs: 120_000,
    });
    console.log(
      `[faults] SIGKILL: first kill with ${atKill} FICs of ${8} and ${problemsAtKill.length} things unconverged; ` +
        `second kill with ${problemsAtSecondKill.length} things unconverged`,
    );
    expect(problemsAtSecondKill.length).toBeGreaterThan(0);
    expect(changed.problems).toEqual([]);
    await fleet.emulator.setConfig({ writeLatencyMs: initialWriteLatencyMs });
  });

  it('leader failover between instances under a steady stream of changes: converges, no duplicate', async () => {
    for (const proc of fleet.running()) await proc.stop();
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
        ? fleet.running().find((p) => readFileSync(p.logFile, 'utf8').includes(`"identity":"${holder}"`))
        : undefined;
    };
    await fleet.startOperator('operator-elect-a', electionArgs);
    await fleet.startOperator('operator-elect-b', electionArgs);
    const firstLeader = await pollUntil(holderProcess, (p) => p !== undefined, 30_000, 200);
    expect(firstLeader).toBeDefined();
    const transitionsBefore = (await readLease())?.spec?.leaseTransitions ?? 0;

    // The stream: a change every 600 ms for about 20 s, cycling create / change grants / delete.
    let streaming = true;
    let changes = 0;
    const stream = (async () => {
      for (let step = 0; streaming; step++) {
        const kind = step % 3;
        if (kind === 0 || fleet.live.size < 4) await fleet.create();
        else if (kind === 1)
          await fleet.changeGrants(fleet.world.identities[step % fleet.world.identities.length]!.id);
        else await fleet.remove([...fleet.live.values()][step % fleet.live.size]!);
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
    await fleet.startOperator('operator-elect-c', electionArgs);
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

    const result = await waitForFleet(
      `leader failover x2 under a stream of ${changes} changes`,
      fleet.check,
      {
        since: streamEnded,
        timeoutMs: 120_000,
      },
    );
    const transitions = ((await readLease())?.spec?.leaseTransitions ?? 0) - transitionsBefore;
    console.log(
      `[faults] leader failover: SIGKILLed leader replaced in ${firstHandoverMs} ms, SIGTERMed leader in ${secondHandoverMs} ms; ` +
        `${changes} changes streamed; ${fleet.live.size} resources live; converged ${result.ms} ms after the stream ended`,
    );
    expect(result.problems).toEqual([]);
    expect(transitions).toBeGreaterThanOrEqual(2);
    expect(changes).toBeGreaterThan(15);
    // One leader at a time: the stopped leader said it released the lease, the standby never led
    // before the lease passed to it.
    expect(readFileSync(secondLeader!.logFile, 'utf8')).toContain('released the lease');
  });
});
