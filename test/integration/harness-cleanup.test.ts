// "No leftover process, even when the run is interrupted": start a second harness in a child
// process, kill that process with SIGKILL (no handler runs), and watch the guardian remove every
// process and the temporary directory.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { harnessInfo, pollFor } from '../harness/context.ts';
import type { HarnessInfo } from '../harness/harness.ts';

const script = new URL('../harness/start-harness.ts', import.meta.url).pathname;

function processesUsing(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', dir], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe.skipIf(!harnessInfo())('harness clean-up', () => {
  it('leaves no process and no directory behind when the runner is killed with SIGKILL', async () => {
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const firstLine = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`start-harness exited with ${code}`)));
    });
    const info = JSON.parse(firstLine) as HarnessInfo;
    // etcd, kube-apiserver, postgres (postmaster and its workers) and the Azure emulator
    expect(processesUsing(info.dir).length).toBeGreaterThanOrEqual(4);
    expect(existsSync(info.dir)).toBe(true);

    child.kill('SIGKILL');
    expect(await pollFor(() => processesUsing(info.dir).length === 0 && !existsSync(info.dir), 20_000)).toBe(
      true,
    );
  }, 120_000);
});
