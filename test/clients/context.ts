// What a client test uses: the world (global-setup.ts), a pod sandbox for the world's pod, the
// check of an app's answer, and toolchains that must be there in CI and may be missing elsewhere.
import * as k8s from '@kubernetes/client-node';
import { expect, inject } from 'vitest';
import { isCI } from '../harness/global-setup.ts';
import type { HarnessInfo } from '../harness/harness.ts';
import {
  type PodSandbox,
  type PodSandboxOptions,
  type RunResult,
  startPodSandbox,
} from '../harness/pod-sandbox.ts';
import type { ClientWorld } from './world.ts';

/** The harness and the world, or undefined (tests skip) outside CI when they are unavailable. */
export function clientWorld(): { info: HarnessInfo; world: ClientWorld } | undefined {
  const harness = inject('harness');
  const world = inject('clientWorld');
  if ('unavailable' in world) {
    if (world.required)
      throw new Error(`the client suite is required in CI but cannot run: ${world.unavailable}`);
    return undefined;
  }
  if ('unavailable' in harness) return undefined;
  return { info: harness, world };
}

/** A sandbox running as the world's pod. */
export async function podSandbox(
  info: HarnessInfo,
  world: ClientWorld,
  options?: PodSandboxOptions,
): Promise<PodSandbox> {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(info.kubernetes.kubeconfigPath);
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const pod = await core.readNamespacedPod({ namespace: world.namespace, name: world.pod });
  return startPodSandbox(info, core, pod, options);
}

/**
 * What every driver prints last: one JSON line with the rows the app read from the granted table
 * and the error the server answered for the ungranted one.
 */
export interface AppAnswer {
  granted: number;
  refused: string | null;
}

/** Checks an app's run: exit 0, the granted table read, the ungranted one refused by the server. */
export function expectAppAnswer(result: RunResult, world: ClientWorld): AppAnswer {
  const output = `exit ${result.code ?? result.signal}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
  expect(result.code, output).toBe(0);
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  let answer: AppAnswer;
  try {
    answer = JSON.parse(line) as AppAnswer;
  } catch {
    throw new Error(`the app printed no JSON answer last\n${output}`);
  }
  expect(answer.granted, output).toBe(world.grantedRows);
  expect(answer.refused, output).toMatch(new RegExp(`permission denied for table ${world.ungrantedTable}`));
  return answer;
}

/**
 * A toolchain a client needs: `install` makes it ready (from the registries, into a cache outside
 * the repo) and returns nothing, or throws. In CI its failure fails the tests; elsewhere they skip
 * with the reason.
 */
export async function toolchain(name: string, install: () => Promise<void>): Promise<string | undefined> {
  try {
    await install();
    return undefined;
  } catch (error) {
    const reason = `${name} is not available: ${(error as Error).message}`;
    if (isCI()) throw new Error(`${reason} (CI=true: a client that cannot be installed fails the run)`);
    console.warn(`[clients] ${reason}; its tests skip`);
    return reason;
  }
}
