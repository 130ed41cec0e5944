// The real helm CLI (built by hack/build-helm.sh) for the tests that render or install the chart:
// where it is, and running it with a cache, config and data directory of the caller's own.
import { execFileSync, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import * as k8s from '@kubernetes/client-node';

export const REPO = resolve(import.meta.dirname, '../..');
export const CHART = join(REPO, 'charts/entra-access');

/** An object the chart renders. */
export type ChartObject = k8s.KubernetesObject & Record<string, unknown>;

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * The helm binary, or why there is none: outside CI a test file then skips, as it does without
 * the harness; in CI a helm that cannot be built throws, so the file fails.
 */
export function findHelm(): { path?: string; reason?: string } {
  try {
    const path = execFileSync('bash', ['hack/build-helm.sh'], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30 * 60_000,
    }).trim();
    return { path };
  } catch (error) {
    const reason = `hack/build-helm.sh failed: ${(error as Error).message}`;
    if (process.env.CI === 'true') throw new Error(reason);
    return { reason };
  }
}

/** Runs `helm args…` in the repository, its cache, config and data directories under `home`. */
export function runHelm(
  helmPath: string,
  home: string,
  args: string[],
  env: Record<string, string> = {},
): HelmResult {
  const result = spawnSync(helmPath, args, {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
      ...env,
    },
  });
  return { status: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/** `helm template args…`: the rendered objects; throws with helm's stderr when it fails. */
export function helmTemplate(helmPath: string, home: string, args: string[]): ChartObject[] {
  const result = runHelm(helmPath, home, ['template', ...args]);
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return (k8s.loadAllYaml(result.stdout) as Array<ChartObject | null>).filter(
    (o): o is ChartObject => o !== null,
  );
}
