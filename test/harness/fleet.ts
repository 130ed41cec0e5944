// A fault test's fleet while it runs (test/reliability/faults-*.test.ts): the world of
// createFleetWorld, the operator processes, and the access resources live and deleted so far, with
// the steps that change them keeping the expectation fleetProblems checks. Free of vitest.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { AzureEmulatorClient } from './azure-emulator/client.ts';
import type { HarnessInfo } from './harness.ts';
import { type ManagedProcess, makeTempDir, removeTempDir } from './processes.ts';
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
} from './scenario.ts';

export interface FleetRunOptions {
  /** The run's unique name: resource names and the operator's cluster name. */
  run: string;
  namespaces: number;
  identities: number;
}

export class FleetRun {
  /** The access resources that exist now, by name, with what each should have. */
  readonly live = new Map<string, FleetAccess>();
  /** The roles of access resources deleted since. */
  readonly gone = new Set<string>();
  /** Every operator process started, running or not. */
  readonly processes: ManagedProcess[] = [];
  readonly info: HarnessInfo;
  readonly custom: k8s.CustomObjectsApi;
  readonly emulator: AzureEmulatorClient;
  readonly world: FleetWorld;
  /** The temporary directory of the operators' logs and token. */
  readonly dir: string;
  readonly tokenFile: string;
  /** The grants variant each identity's accesses have now (all accesses of one role agree). */
  readonly #variants = new Map<string, number>();
  #nextIndex = 0;

  private constructor(
    info: HarnessInfo,
    custom: k8s.CustomObjectsApi,
    emulator: AzureEmulatorClient,
    world: FleetWorld,
    dir: string,
    tokenFile: string,
  ) {
    this.info = info;
    this.custom = custom;
    this.emulator = emulator;
    this.world = world;
    this.dir = dir;
    this.tokenFile = tokenFile;
  }

  /** A fleet world (createFleetWorld) with the operator's token written to a temporary directory. */
  static async create(
    info: HarnessInfo,
    kubeConfig: k8s.KubeConfig,
    options: FleetRunOptions,
  ): Promise<FleetRun> {
    const emulator = new AzureEmulatorClient(info.azure.url, { ca: readFileSync(info.caFile) });
    const dir = makeTempDir(options.run);
    const world = await createFleetWorld(info, kubeConfig, emulator, options);
    const tokenFile = await writeOperatorToken(info, kubeConfig, dir);
    return new FleetRun(
      info,
      kubeConfig.makeApiClient(k8s.CustomObjectsApi),
      emulator,
      world,
      dir,
      tokenFile,
    );
  }

  /** What is not converged yet (fleetProblems against live and gone); [] means converged. */
  readonly check = (): Promise<string[]> =>
    fleetProblems(this.info, this.custom, this.emulator, this.world, {
      live: [...this.live.values()],
      gone: [...this.gone],
    });

  /** `node src/main.ts run --controller --health-port=0 --metrics-port=0 …args` for this fleet's cluster. */
  async startOperator(name: string, args: string[] = []): Promise<ManagedProcess> {
    const proc = await startOperatorProcess(this.info, {
      name,
      logDir: this.dir,
      tokenFile: this.tokenFile,
      clusterName: this.world.run,
      args: ['--controller', '--health-port=0', '--metrics-port=0', ...args],
    });
    this.processes.push(proc);
    return proc;
  }

  running(): ManagedProcess[] {
    return this.processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
  }

  /** Creates the next member of the fleet (fleetAccess), with its identity's current grants. */
  async create(): Promise<FleetAccess> {
    const index = this.#nextIndex++;
    const identity = fleetAccess(this.world, index).identity;
    const access = fleetAccess(this.world, index, this.#variants.get(identity.id) ?? 0);
    await applyFleetAccess(this.custom, this.world, access);
    this.live.set(access.name, access);
    return access;
  }

  async remove(access: FleetAccess): Promise<void> {
    await deleteAccess(this.custom, access.namespace, access.name);
    this.live.delete(access.name);
    this.gone.add(access.role);
  }

  /** Moves every live access of `identityId` to the next grants variant. */
  async changeGrants(identityId: string): Promise<void> {
    const variant = (this.#variants.get(identityId) ?? 0) + 1;
    this.#variants.set(identityId, variant);
    for (const access of [...this.live.values()].filter((a) => a.identity.id === identityId)) {
      const changed = fleetAccess(this.world, Number(access.name.slice('acc'.length)), variant);
      await patchFleetGrants(this.custom, changed);
      this.live.set(changed.name, changed);
    }
  }

  /**
   * For an afterAll: deletes every live access and waits until an operator (a new one when none
   * runs) has cleaned up after them, so the next file finds nothing of this one; then stops every
   * operator and removes the directory. Never throws.
   */
  async cleanUp(label: string): Promise<void> {
    try {
      if (this.running().length === 0) await this.startOperator(`${label}-cleanup`, ['--leader-elect=false']);
      for (const access of [...this.live.values()]) await this.remove(access).catch(() => {});
      await waitForFleet(`${label} clean-up`, this.check, { timeoutMs: 60_000 });
    } catch {
      // Best effort: the file's assertions have spoken already.
    }
    await this.stop();
  }

  /** Stops every operator and removes the directory (a fleet whose harness goes away with it). */
  async stop(): Promise<void> {
    for (const proc of this.processes) await proc.stop().catch(() => {});
    removeTempDir(this.dir);
  }
}
