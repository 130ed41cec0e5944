// Starts the harness on its own and keeps it up until SIGINT/SIGTERM: for poking at the real parts
// by hand (`npx node test/harness/start-harness.ts`, then KUBECONFIG from the printed JSON) and for
// the test that proves the guardian cleans up after a runner killed with SIGKILL.
import { startHarness } from './harness.ts';

const harness = await startHarness({ installCrds: process.argv.includes('--crds') });
process.stdout.write(`${JSON.stringify(harness.info)}\n`);
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await harness.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
setInterval(() => {}, 1 << 30);
