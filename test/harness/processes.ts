// Starting and stopping the real parts (etcd, kube-apiserver, postgres, the Azure emulator) as
// plain child processes, each in its own process group, with its output kept in a log file
// and registered with the guardian so nothing outlives the run.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const guardianScript = new URL('./guardian.ts', import.meta.url).pathname;
let guardian: ChildProcess | undefined;

function tellGuardian(line: string): void {
  if (!guardian) {
    guardian = spawn(process.execPath, [guardianScript], {
      detached: true,
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    guardian.unref();
    // The pipe must not keep the runner alive; its closing is the guardian's signal.
    (guardian.stdin as unknown as { unref(): void }).unref();
  }
  guardian.stdin?.write(`${line}\n`);
}

/** A temporary directory that is removed by `removeTempDir`, or by the guardian if the run dies. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `entra-access-${prefix}-`));
  tellGuardian(`dir ${dir}`);
  return dir;
}

/** Makes the guardian remove `path` (a file or a directory) if the runner dies before it does. */
export function removeWithRunner(path: string): void {
  tellGuardian(`dir ${path}`);
}

export async function makeWorldReadable(dir: string): Promise<void> {
  await chmod(dir, 0o755);
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tellGuardian(`undir ${dir}`);
}

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** The last lines of the process's output, for error messages. */
  tail(lines?: number): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the whole group is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL the whole group at once, as a crash would. */
  kill(): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logDir: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  /** Called with each chunk of output; resolve `startProcess` when it returns true. */
  readyWhen?: (output: string) => boolean;
  timeoutMs?: number;
}

export async function startProcess(options: StartOptions): Promise<ManagedProcess> {
  const logFile = join(options.logDir, `${options.name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(options.command, options.args, {
    env: options.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid }),
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${options.name}: could not start ${options.command}`);
  tellGuardian(`pid ${pid}`);

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  void exited.then(() => tellGuardian(`unpid ${pid}`));
  const tail = (lines = 30): string => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };

  let output = '';
  let isReady = !options.readyWhen;
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      log.write(chunk);
      if (isReady || !options.readyWhen) return;
      // Keep only a bounded window for the predicate.
      output = (output + chunk.toString('utf8')).slice(-64_000);
      if (options.readyWhen(output)) {
        isReady = true;
        output = '';
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', reject);
    void exited.then((code) =>
      reject(new Error(`${options.name} exited with code ${code} during start-up:\n${tail()}`)),
    );
    if (isReady) resolve();
  });

  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  };
  const managed: ManagedProcess = {
    name: options.name,
    child,
    logFile,
    tail,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), graceMs);
      await closed;
      clearTimeout(timer);
      killGroup('SIGKILL'); // stragglers of the group (e.g. postgres backends)
      log.end();
    },
    async kill() {
      killGroup('SIGKILL');
      await closed;
      log.end();
    },
  };

  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${options.name} not ready after ${timeoutMs} ms:\n${tail()}`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (error) {
    await managed.stop(1000);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return managed;
}
