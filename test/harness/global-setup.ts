// vitest global setup for integration tests: one harness for the run, torn down at the end.
// In CI (CI=true) a part that cannot start fails every test that needs it; elsewhere those tests
// skip with the reason, so a laptop without Go can still run the unit tests. (The failure is
// reported through the tests, not by throwing here: vitest exits 0 when a global setup throws.)
import type { TestProject } from 'vitest/node';
import { type Harness, type HarnessInfo, startHarness } from './harness.ts';

export type ProvidedHarness = HarnessInfo | { unavailable: string; required: boolean };

declare module 'vitest' {
  export interface ProvidedContext {
    harness: ProvidedHarness;
  }
}

export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.CI) && env.CI !== 'false' && env.CI !== '0';
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  let harness: Harness;
  try {
    harness = await startHarness({ installCrds: true });
  } catch (error) {
    const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
    const required = isCI();
    console.warn(
      `[harness] unavailable, integration tests will ${required ? 'fail (CI=true)' : 'skip'}: ${reason}`,
    );
    project.provide('harness', { unavailable: reason, required });
    return undefined;
  }
  // Test workers are forked after this point and read the variable at start-up, so the real
  // Azure SDKs trust the emulator's and the apiserver's test CA as they would a public one.
  process.env.NODE_EXTRA_CA_CERTS = harness.info.caFile;
  project.provide('harness', harness.info);
  return () => harness.stop();
}
