// Issue 12, orphaned FICs (a security defect found by a soak with churn): after a change of
// spec.serviceAccountName the reconcile creates the new FIC, then deletes the old one. That delete
// is paced by the operator's own write pacing (one write per identity every ~4 s), so it is handed
// back to the work queue and, for those seconds, the status still names only the old FIC. A
// deletion of the resource, or a second service-account change, that arrives in that window must
// still leave no FIC behind: a leftover FIC keeps trusting a service account nobody asked for and
// counts toward the identity's 20-FIC limit.
//
// Each trial has a managed identity of its own, and the FICs are read from the Azure emulator,
// never from the product's status. The emulator's FIC write limits are on (docs/design.md §6: 0.25/s per
// identity, 2/s per subscription). Trials of one case run at once, so the convergence wait is paid
// once per case; each sends its second change at a different delay after the first (1-2.5 s).
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControllerComponent } from '../../src/controller/component.ts';
import { AZURE_RATE_LIMITS, AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { emulatorFics, patchServiceAccountName, serviceAccountSubject } from '../harness/churn.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  applyFleetAccess,
  createFleetWorld,
  deleteAccess,
  deleteAccessesAndWait,
  type FleetAccess,
  type FleetWorld,
  fleetProblems,
  isReady,
  readAccess,
  startInProcessController,
  superuserQuery,
  waitForFleet,
  writeOperatorToken,
} from '../harness/scenario.ts';

const info = harnessInfo();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Trials per case, each on its own identity, each with its own delay before the second change. */
const DELAYS_MS = [1000, 1750, 2500];
/** How long the fleet may take to settle after the last change (FIC writes: ~4 s per identity). */
const CONVERGE_MS = 90_000;

/** What one trial saw at the moment it sent its second change. */
interface Trial {
  access: FleetAccess;
  /** Service accounts in the order the spec named them. */
  serviceAccounts: string[];
  delayMs: number;
  /** Milliseconds from the service-account change until the emulator held its new FIC. */
  newFicAfterMs?: number;
  /** Subjects of the identity's FICs when the second change was sent. */
  ficsAtSecondChange: string[];
  /** status.federatedCredential.subject when the second change was sent. */
  statusSubjectAtSecondChange?: string;
  /** The window was hit: the old FIC and the new one both existed when the second change was sent. */
  windowHit: boolean;
}

describe.skipIf(!info)('FICs after a service-account change followed closely by another change', () => {
  const run = uniqueName('orph');
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let emulator: AzureEmulatorClient;
  let dir: string;
  let controller: ControllerComponent | undefined;
  const worlds: FleetWorld[] = [];

  const subjects = async (access: FleetAccess) =>
    (await emulatorFics(emulator, access.identity.id)).map((f) => f.properties.subject).sort();

  beforeAll(async () => {
    kc = adminKubeConfig(info!);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    emulator = new AzureEmulatorClient(info!.azure.url, { ca: readFileSync(info!.caFile) });
    dir = makeTempDir('orphaned-fics');
    // One world per case (its own database, namespace, server, subscription and identities), so
    // what one case leaves behind cannot be counted against the other.
    for (const suffix of ['del', 'sa2'])
      worlds.push(
        await createFleetWorld(info!, kc, emulator, {
          run: `${run}-${suffix}`,
          namespaces: 1,
          identities: DELAYS_MS.length,
        }),
      );
    // Azure's read and write limits are the emulator's default: this run is measured against them.
    expect((await emulator.getConfig()).rateLimits).toEqual(AZURE_RATE_LIMITS);
    controller = await startInProcessController(info!, kc, {
      tokenFile: await writeOperatorToken(info!, kc, dir),
      clusterName: run,
    });
  });

  afterAll(async () => {
    if (controller) {
      for (const world of worlds) await deleteAccessesAndWait(custom, world.namespaces[0]!, 60_000);
    }
    await controller?.stop();
    for (const world of worlds) {
      // The FICs a defective clean-up left behind go with their identities.
      for (const identity of world.identities) await emulator.deleteIdentity(identity.id).catch(() => {});
      await superuserQuery(info!, `DROP DATABASE IF EXISTS "${world.database}" WITH (FORCE)`).catch(() => {});
      for (let i = 0; i < DELAYS_MS.length; i++)
        await superuserQuery(info!, `DROP ROLE IF EXISTS "${world.database}_t${i}"`).catch(() => {});
    }
    if (dir) removeTempDir(dir);
  }, 180_000);

  /**
   * Creates trial `index`'s access, waits until it is Ready with its one FIC, lets the identity's
   * write pacing go idle, changes the service account, waits for the new FIC to appear in the
   * emulator and then, `delayMs` after the change, reads what exists and calls `second`.
   */
  async function runTrial(
    world: FleetWorld,
    index: number,
    second: (trial: Trial) => Promise<void>,
  ): Promise<Trial> {
    const access: FleetAccess = {
      namespace: world.namespaces[0]!,
      name: `t${index}`,
      serviceAccount: `t${index}-sa0`,
      identity: world.identities[index]!,
      role: `${world.database}_t${index}`,
      tables: { orders: ['SELECT'] },
    };
    const trial: Trial = {
      access,
      serviceAccounts: [access.serviceAccount],
      delayMs: DELAYS_MS[index]!,
      ficsAtSecondChange: [],
      windowHit: false,
    };
    const subjectOf = (sa: string) => serviceAccountSubject(access.namespace, sa);
    await applyFleetAccess(custom, world, access);
    const ready = await pollUntil(
      () => readAccess(custom, access.namespace, access.name),
      (a) => isReady(a) && a?.status?.federatedCredential?.subject === subjectOf(access.serviceAccount),
      60_000,
      200,
    );
    expect(isReady(ready), `${access.name}: ${JSON.stringify(ready?.status)}`).toBe(true);
    expect(await subjects(access)).toEqual([subjectOf(access.serviceAccount)]);
    // A full pacing interval (4 s at 0.25/s) since the last write on the identity: the new FIC is
    // written at once, and the delete of the old one is the write that gets handed back.
    await sleep(5000);

    const sa1 = `t${index}-sa1`;
    trial.serviceAccounts.push(sa1);
    const changedAt = Date.now();
    await patchServiceAccountName(custom, access.namespace, access.name, sa1);
    const withNew = await pollUntil(
      () => subjects(access),
      (s) => s.includes(subjectOf(sa1)),
      20_000,
      100,
    );
    if (withNew.includes(subjectOf(sa1))) trial.newFicAfterMs = Date.now() - changedAt;
    await sleep(Math.max(0, changedAt + trial.delayMs - Date.now()));

    trial.ficsAtSecondChange = await subjects(access);
    trial.statusSubjectAtSecondChange = (
      await readAccess(custom, access.namespace, access.name)
    )?.status?.federatedCredential?.subject;
    trial.windowHit =
      trial.ficsAtSecondChange.includes(subjectOf(access.serviceAccount)) &&
      trial.ficsAtSecondChange.includes(subjectOf(sa1));
    await second(trial);
    return trial;
  }

  const report = (label: string, trials: Trial[]) => {
    for (const t of trials)
      console.log(
        `[orphaned-fics] ${label} ${t.access.name}: service accounts ${t.serviceAccounts.join(' -> ')}; ` +
          `new FIC in the emulator ${t.newFicAfterMs ?? 'never'} ms after the change; second change after ${t.delayMs} ms ` +
          `with FICs ${JSON.stringify(t.ficsAtSecondChange.map((s) => s.split(':').pop()))} and status naming ` +
          `${t.statusSubjectAtSecondChange?.split(':').pop()} (window ${t.windowHit ? 'hit' : 'missed'})`,
      );
  };

  it(
    'a service-account change, then a delete of the resource within 1-3 s: no FIC and no role left',
    async () => {
      const world = worlds[0]!;
      const trials = await Promise.all(
        DELAYS_MS.map((_, index) =>
          runTrial(world, index, (trial) => deleteAccess(custom, trial.access.namespace, trial.access.name)),
        ),
      );
      report('delete', trials);
      const result = await waitForFleet(
        'service-account change then delete',
        () =>
          fleetProblems(info!, custom, emulator, world, { live: [], gone: trials.map((t) => t.access.role) }),
        { timeoutMs: CONVERGE_MS },
      );

      // Exactly nothing: every FIC either service account had, on every identity, is gone.
      const left = await Promise.all(
        trials.map(async (t) => ({ access: t.access.name, fics: await subjects(t.access) })),
      );
      console.log(`[orphaned-fics] delete: FICs left per identity ${JSON.stringify(left)}`);
      expect(left).toEqual(trials.map((t) => ({ access: t.access.name, fics: [] })));
      expect(result.problems).toEqual([]);
      // The race was really run: in at least one trial the delete came while both FICs existed.
      expect(trials.filter((t) => t.windowHit).length).toBeGreaterThanOrEqual(1);
    },
    CONVERGE_MS + 90_000,
  );

  it(
    'a service-account change, then a second one within 1-3 s: exactly one FIC, for the last service account',
    async () => {
      const world = worlds[1]!;
      const finals: FleetAccess[] = [];
      const trials = await Promise.all(
        DELAYS_MS.map((_, index) =>
          runTrial(world, index, async (trial) => {
            const sa2 = `${trial.access.name}-sa2`;
            trial.serviceAccounts.push(sa2);
            await patchServiceAccountName(custom, trial.access.namespace, trial.access.name, sa2);
            finals.push({ ...trial.access, serviceAccount: sa2 });
          }),
        ),
      );
      report('second change', trials);
      const result = await waitForFleet(
        'service-account change then another',
        () => fleetProblems(info!, custom, emulator, world, { live: finals }),
        { timeoutMs: CONVERGE_MS },
      );

      const left = await Promise.all(
        trials.map(async (t) => ({ access: t.access.name, fics: await subjects(t.access) })),
      );
      console.log(`[orphaned-fics] second change: FICs per identity ${JSON.stringify(left)}`);
      expect(left).toEqual(
        trials.map((t) => ({
          access: t.access.name,
          fics: [serviceAccountSubject(t.access.namespace, t.serviceAccounts.at(-1)!)],
        })),
      );
      expect(result.problems).toEqual([]);
      for (const t of trials) {
        const access = await readAccess(custom, t.access.namespace, t.access.name);
        expect(access?.status?.federatedCredential?.subject).toBe(
          serviceAccountSubject(t.access.namespace, t.serviceAccounts.at(-1)!),
        );
      }
      expect(trials.filter((t) => t.windowHit).length).toBeGreaterThanOrEqual(1);
    },
    CONVERGE_MS + 90_000,
  );
});
