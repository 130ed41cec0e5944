// `make demo`, the launcher: starts the harness (kube-apiserver + etcd with the CRDs, PostgreSQL,
// the Azure emulator), runs the demo's steps in a child process, and always stops the harness.
//
// Why two processes: the app's side uses the real @azure/identity, which trusts the emulator's
// test CA only through NODE_EXTRA_CA_CERTS, and Node reads that variable once, at start-up. The
// CA is made when the harness starts, so the steps run in a child started after it, with the
// variable set, exactly as a pod's SDK would trust a public CA.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type Harness, startHarness } from '../../test/harness/harness.ts';
import { step, TOTAL_STEPS, wallTime } from './report.ts';

const STEPS_SCRIPT = new URL('./steps.ts', import.meta.url).pathname;
const startedAt = Date.now();
let harness: Harness | undefined;

/** Runs the steps process; resolves with its exit code (non-zero: a step failed and said why). */
function runSteps(info: Harness['info']): Promise<number> {
  const child = spawn(process.execPath, [STEPS_SCRIPT], {
    stdio: 'inherit',
    env: {
      ...process.env,
      NODE_EXTRA_CA_CERTS: info.caFile,
      DEMO_HARNESS_INFO: join(info.dir, 'harness.json'),
    },
  });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.once('error', () => resolve(1));
  });
}

// Ctrl-C reaches the steps process too (same process group); it stops the operator, and this
// process stops the harness, so an interrupted demo leaves nothing behind either.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => (interrupted = true));

let status = 1;
try {
  await step(
    1,
    'start the harness',
    async () => {
      harness = await startHarness({ installCrds: true });
      const { versions, kubernetes, postgres, azure } = harness.info;
      return {
        summary: `harness up: kube-apiserver ${versions.kubernetes} + etcd, PostgreSQL ${versions.postgres}, Azure emulator`,
        details: [
          `apiserver ${kubernetes.url}  (OIDC issuer ${kubernetes.issuer})`,
          `PostgreSQL Entra gateway 127.0.0.1:${postgres.port}  Azure emulator ${azure.url}`,
        ],
      };
    },
    180_000,
  );
  status = interrupted ? 1 : await runSteps(harness!.info);
  if (interrupted) status = 1;
} catch {
  status = 1;
} finally {
  await step(TOTAL_STEPS, 'stop the harness', async () => {
    await harness?.stop();
    return { summary: 'harness stopped (apiserver, etcd, PostgreSQL, Azure emulator; temp dir removed)' };
  }).catch(() => {
    status = 1;
  });
}
const outcome =
  status === 0
    ? `demo passed: ${TOTAL_STEPS}/${TOTAL_STEPS} steps`
    : interrupted
      ? 'demo interrupted'
      : 'demo FAILED (see the ✗ line above)';
process.stdout.write(`${outcome}, wall time ${wallTime(startedAt)}\n`);
process.exit(status);
