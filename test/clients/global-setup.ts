// vitest global setup of the client suite: the harness (test/harness/global-setup.ts), then the
// one app every client logs in as (world.ts), provided to the test files as `clientWorld`. As for
// the harness, a world that cannot be built fails every test in CI and skips them elsewhere.
import type { TestProject } from 'vitest/node';
import harnessSetup, { isCI } from '../harness/global-setup.ts';
import { podSandboxUnavailable } from '../harness/pod-sandbox.ts';
import { type ClientWorld, startClientWorld } from './world.ts';

export type ProvidedWorld = ClientWorld | { unavailable: string; required: boolean };

declare module 'vitest' {
  export interface ProvidedContext {
    clientWorld: ProvidedWorld;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const stopHarness = await harnessSetup(project);
  const harness = project.getProvidedContext().harness;
  const unavailable =
    'unavailable' in harness
      ? `the harness did not start: ${harness.unavailable}`
      : podSandboxUnavailable(harness);
  if (unavailable || 'unavailable' in harness) {
    console.warn(`[clients] the client suite cannot run here: ${unavailable}`);
    project.provide('clientWorld', { unavailable: unavailable ?? 'no harness', required: isCI() });
    return stopHarness;
  }
  try {
    const running = await startClientWorld(harness);
    project.provide('clientWorld', running.world);
    return async () => {
      await running.stop().catch(() => {});
      await stopHarness?.();
    };
  } catch (error) {
    const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
    console.warn(`[clients] the app's world could not be built: ${reason}`);
    project.provide('clientWorld', { unavailable: reason, required: isCI() });
    return stopHarness;
  }
}
