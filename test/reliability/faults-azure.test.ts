// Faults on the Azure side (issue 8, "Faults"): ARM answering 429 with Retry-After, then 500, then
// hanging for a while; and the Entra token endpoint down for a while, seen by an operator that
// starts while it is down. Each ends converged (fleetProblems in scenario.ts: every resource
// Ready, exactly the right FICs, roles and grants, no duplicate, no orphan) and logs how long that
// took. The operator is the real CLI (`node src/main.ts run --controller`) against the shared harness.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CountersSnapshot } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, sleep, uniqueName } from '../harness/context.ts';
import { FleetRun } from '../harness/fleet.ts';
import type { ManagedProcess } from '../harness/processes.ts';
import { waitForFleet } from '../harness/scenario.ts';

const info = harnessInfo();

/** Per status, how many answers the emulator gave between two snapshots (`arm` or `token`). */
function delta(
  before: CountersSnapshot,
  after: CountersSnapshot,
  kind: 'arm' | 'token',
): Record<string, number> {
  const a = kind === 'arm' ? after.arm.byStatus : after.token.byOutcome;
  const b = kind === 'arm' ? before.arm.byStatus : before.token.byOutcome;
  return Object.fromEntries(
    Object.entries(a)
      .map(([k, v]) => [k, v - (b[k] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );
}

describe.skipIf(!info)('faults on the Azure side end converged', () => {
  const run = uniqueName('fza');
  let fleet: FleetRun;
  let operator: ManagedProcess | undefined;

  const startOperator = async (name: string) => {
    operator = await fleet.startOperator(name, ['--leader-elect=false']);
    return operator;
  };

  beforeAll(async () => {
    fleet = await FleetRun.create(info!, adminKubeConfig(info!), { run, namespaces: 2, identities: 5 });
  });

  afterAll(async () => {
    await fleet?.emulator.clearFaults().catch(() => {});
    // Leave nothing behind for the next file: delete the fleet while the operator still runs.
    await fleet?.cleanUp('faults-azure');
  });

  it('ARM answering 429 with Retry-After, then 500, then hanging, for a while: converges once it recovers', async () => {
    const { emulator } = fleet;
    await startOperator('operator-arm');
    const before = await emulator.counters();
    const started = Date.now();
    // 429 with Retry-After: 2 s on every ARM request while the fleet is created.
    let fault = await emulator.addFault({ target: 'arm', status: 429, retryAfterSeconds: 2 });
    for (let i = 0; i < 8; i++) await fleet.create();
    await sleep(5000);
    const during429 = await fleet.check();
    // Then 500 on every request.
    await emulator.removeFault(fault);
    fault = await emulator.addFault({ target: 'arm', status: 500 });
    await sleep(4000);
    // Then requests that hang for 12 s before they are served (no answer: the client waits).
    await emulator.removeFault(fault);
    await emulator.addFault({ target: 'arm', latencyMs: 12_000, count: 6 });
    await sleep(3000);
    const duringFaults = await fleet.check();
    const cleared = Date.now();
    // The hanging requests already taken keep hanging; new ones are served normally.
    await emulator.clearFaults();

    const result = await waitForFleet('ARM 429/500/hang', fleet.check, {
      since: cleared,
      timeoutMs: 150_000,
    });
    const answers = delta(before, await emulator.counters(), 'arm');
    console.log(
      `[faults] ARM faults: converged ${result.ms} ms after the faults ended, ${Date.now() - started} ms after the first create; ` +
        `ARM answers by status ${JSON.stringify(answers)}`,
    );
    // The faults really held the fleet back, and the operator really met them.
    expect(during429.length).toBeGreaterThan(0);
    expect(duringFaults.length).toBeGreaterThan(0);
    expect(answers['429'] ?? 0).toBeGreaterThan(0);
    expect(answers['500'] ?? 0).toBeGreaterThan(0);
    expect(result.problems).toEqual([]);
    // Retry-After honoured: 8 resources over 5 identities, 5 s of 429s with Retry-After 2 s allow
    // a few rounds, not a storm.
    expect(answers['429']).toBeLessThan(60);
  });

  it('the Entra token endpoint down for a while, for an operator that starts meanwhile: converges once it is back', async () => {
    // A fresh process has no cached token: every ARM call and PostgreSQL login needs Entra.
    const { emulator } = fleet;
    await operator?.stop();
    const before = await emulator.counters();
    await emulator.addFault({ target: 'entra', status: 503 });
    const started = Date.now();
    await startOperator('operator-entra');
    // While Entra is down: two new resources (a new identity), the two of identity 0 deleted
    // (their FIC and role must go), and the grants of identity 1's two resources changed.
    await fleet.create(); // acc8
    await fleet.create(); // acc9
    for (const name of ['acc0', 'acc1']) await fleet.remove(fleet.live.get(name)!);
    // acc2 and acc3, identity 1's two resources.
    await fleet.changeGrants(fleet.world.identities[1]!.id);
    await sleep(8000);
    const duringOutage = await fleet.check();
    const cleared = Date.now();
    await emulator.clearFaults();

    const result = await waitForFleet('Entra token endpoint down', fleet.check, {
      since: cleared,
      timeoutMs: 150_000,
    });
    const tokens = delta(before, await emulator.counters(), 'token');
    console.log(
      `[faults] Entra down for ${cleared - started} ms: converged ${result.ms} ms after it came back; token requests by outcome ${JSON.stringify(tokens)}`,
    );
    expect(duringOutage.length).toBeGreaterThan(0);
    // The operator met the outage (the emulator answers a faulted request before counting it).
    expect(readFileSync(operator!.logFile, 'utf8')).toMatch(
      /endpoints_resolution_error|AADSTS90000|Injected fault/,
    );
    expect(result.problems).toEqual([]);
    expect(operator?.child.exitCode).toBeNull();
  });
});
