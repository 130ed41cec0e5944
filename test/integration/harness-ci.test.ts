// "In CI, a test that needs a real part must fail, not skip, when the part is missing": run the
// integration project with a control-plane binary that does not exist, with and without CI=true.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { harnessInfo } from '../harness/context.ts';

const root = new URL('../../', import.meta.url).pathname;

function runIntegrationWithMissingApiserver(ci: boolean): { status: number | null; output: string } {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEST_ASSET_KUBE_APISERVER: '/nonexistent/kube-apiserver',
    TEST_ASSET_ETCD: '/nonexistent/etcd',
    NODE_EXTRA_CA_CERTS: '',
  };
  delete env.CI;
  delete env.VITEST;
  delete env.VITEST_WORKER_ID;
  delete env.VITEST_POOL_ID;
  if (ci) env.CI = 'true';
  const result = spawnSync(
    process.execPath,
    [
      `${root}node_modules/vitest/vitest.mjs`,
      'run',
      '--project',
      'integration',
      'test/integration/harness-kube-apiserver.test.ts',
    ],
    { cwd: root, env, encoding: 'utf8', timeout: 60_000 },
  );
  return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

// Only meaningful where the harness itself runs; the nested runs start no real part.
describe.skipIf(!harnessInfo())('a missing real part', () => {
  it('fails the run when CI=true', () => {
    const { status, output } = runIntegrationWithMissingApiserver(true);
    expect(status).not.toBe(0);
    expect(output).toContain('the test harness is required in CI but did not start');
    expect(output).toContain('/nonexistent/kube-apiserver does not exist');
  });

  it('skips the tests that need it, with the reason, outside CI', () => {
    const { status, output } = runIntegrationWithMissingApiserver(false);
    expect(status).toBe(0);
    expect(output).toContain('integration tests will skip');
    expect(output).toMatch(/skipped/);
  });
});
