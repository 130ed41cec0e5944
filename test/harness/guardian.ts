// Process guardian: the last line of defence against leftovers.
//
// The harness starts it first, detached, with a pipe on its stdin, and tells it over that pipe
// about every process group it starts ("pid <n>") and every directory it creates ("dir <path>").
// When the pipe closes — the harness stopped normally, crashed, or was killed with SIGKILL — it
// terminates the process groups still alive and removes the directories. Being detached, it does
// not receive the terminal's Ctrl-C, so it outlives the test runner long enough to clean up.
import { rmSync } from 'node:fs';

const groups = new Set<number>();
const dirs = new Set<string>();
let pending = '';

function alive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalAll(signal: NodeJS.Signals): void {
  for (const pid of groups) {
    try {
      process.kill(-pid, signal);
    } catch {
      groups.delete(pid);
    }
  }
}

async function cleanUp(): Promise<void> {
  signalAll('SIGTERM');
  for (let waited = 0; waited < 5000 && [...groups].some(alive); waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  signalAll('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  pending += chunk;
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    const [verb, ...rest] = line.split(' ');
    const arg = rest.join(' ');
    if (verb === 'pid') groups.add(Number(arg));
    else if (verb === 'unpid') groups.delete(Number(arg));
    else if (verb === 'dir') dirs.add(arg);
    else if (verb === 'undir') dirs.delete(arg);
  }
});
process.stdin.on('end', () => void cleanUp());
process.stdin.on('error', () => void cleanUp());
for (const signal of ['SIGINT', 'SIGHUP', 'SIGTERM'] as const) process.on(signal, () => void cleanUp());
