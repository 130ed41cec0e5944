// What an integration test uses to reach the harness started by global-setup.ts.

import * as k8s from '@kubernetes/client-node';
import { inject } from 'vitest';
import type { HarnessInfo } from './harness.ts';

/**
 * The harness, or undefined when it could not start outside CI (tests then skip). In CI a missing
 * part throws here, at collection, so every test file that needs the harness fails.
 */
export function harnessInfo(): HarnessInfo | undefined {
  const provided = inject('harness');
  if (!('unavailable' in provided)) return provided;
  if (provided.required)
    throw new Error(`the test harness is required in CI but did not start: ${provided.unavailable}`);
  return undefined;
}

export function adminKubeConfig(info: HarnessInfo): k8s.KubeConfig {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(info.kubernetes.kubeconfigPath);
  return kubeConfig;
}

/** A DNS-1123 name unique to this test run, so concurrent test files never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

export { poller, pollFor, pollUntil, sleep } from './poll.ts';
