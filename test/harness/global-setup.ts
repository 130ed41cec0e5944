// vitest global setup for integration tests: one harness for the run, torn down at the end.
// In CI (CI=true) a part that cannot start fails every test that needs it; elsewhere those tests
// skip with the reason, so a laptop without Go can still run the unit tests. (The failure is
// reported through the tests, not by throwing here: vitest exits 0 when a global setup throws.)
import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type Harness, type HarnessInfo, startHarness } from './harness.ts';
import { removeWithRunner } from './processes.ts';

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
  // Several projects each start a harness with its own CA in this one process: the variable
  // names a bundle every harness appends to, not one harness's CA, which another would replace.
  const bundle = join(tmpdir(), `entra-access-test-ca-bundle-${process.pid}.pem`);
  removeWithRunner(bundle);
  // PEM blocks must each end their line, or the bundle no longer parses ("bad end line").
  appendFileSync(bundle, `${readFileSync(harness.info.caFile, 'utf8').trim()}\n`);
  process.env.NODE_EXTRA_CA_CERTS = bundle;
  project.provide('harness', harness.info);
  return async () => {
    await harness.stop();
    rmSync(bundle, { force: true });
  };
}
