// Python for the client suite: a virtual environment of the machine's CPython (python3 on PATH,
// 3.11 or newer) with test/clients/python/requirements.txt installed from PyPI by pip, as an app
// image's `pip install -r` gets it. Every package is pinned there, transitive ones included, and
// pip installs them with --no-deps so nothing unpinned slips in; `pip check` then proves the set
// consistent. Wheels only: a source build would test the machine's compilers, not the clients.
//
// The venv lives under ~/.cache/entra-access/clients/python-<key>, the key a hash of the pin file
// and of the interpreter (a venv belongs to the interpreter that made it). A stamp written last
// marks it complete; a venv without one is half-built and is made again.
//
// psycopg's pure-Python implementation loads the system's libpq (Debian's libpq5, 15 on Debian
// 12), installed with apt-get when missing; psycopg-binary brings its own, newer one.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { aptInstall } from './debian.ts';

const run = promisify(execFile);
const REQUIREMENTS = new URL('../python/requirements.txt', import.meta.url);
const STAMP = '.entra-access-complete';

export interface PythonToolchain {
  /** The venv's interpreter: run the apps with it. */
  python: string;
  venv: string;
  /** The interpreter, the venv (built or reused) and the system libpq, for the log. */
  description: string;
}

/** python3 from PATH: its real executable and version. */
async function machinePython(): Promise<{ executable: string; version: string }> {
  const { stdout } = await run('python3', [
    '-c',
    'import os, platform, sys; print(os.path.realpath(sys.executable)); print(platform.python_version()); print(sys.version_info >= (3, 11))',
  ]).catch((error: Error) => {
    throw new Error(`python3 does not run: ${error.message}`);
  });
  const [executable, version, recent] = stdout.trim().split('\n');
  if (recent !== 'True')
    throw new Error(`python3 is ${version}; the pinned clients need CPython 3.11 or newer`);
  return { executable: executable!, version: version! };
}

/** The venv's directory for these pins and this interpreter. */
export function pythonVenvDir(interpreter: { executable: string; version: string }): string {
  const key = createHash('sha256')
    .update(readFileSync(REQUIREMENTS))
    .update(`\0${interpreter.executable}\0${interpreter.version}`)
    .digest('hex')
    .slice(0, 12);
  return join(homedir(), '.cache', 'entra-access', 'clients', `python-${key}`);
}

async function buildVenv(interpreter: { executable: string }, venv: string): Promise<void> {
  await rm(venv, { recursive: true, force: true });
  await mkdir(dirname(venv), { recursive: true });
  await run(interpreter.executable, ['-m', 'venv', venv]);
  const python = join(venv, 'bin', 'python');
  const pip = ['-m', 'pip', '--disable-pip-version-check', '--no-input'];
  await run(
    python,
    [...pip, 'install', '--no-deps', '--only-binary', ':all:', '--requirement', fileURLToPath(REQUIREMENTS)],
    { maxBuffer: 16 << 20, timeout: 600_000 },
  ).catch((error: Error & { stderr?: string }) => {
    const tail = error.stderr?.trim().split('\n').slice(-5).join(' | ');
    throw new Error(`pip install failed: ${tail || error.message}`);
  });
  const check = await run(python, [...pip, 'check']).catch((error: { stdout?: string }) => {
    throw new Error(`the pinned set is inconsistent (pip check): ${error.stdout?.trim()}`);
  });
  const { stdout: frozen } = await run(python, [...pip, 'freeze']);
  await writeFile(join(venv, STAMP), `${check.stdout.trim()}\n${frozen}`);
}

/**
 * Makes the venv ready (reusing a complete one) and the system's libpq present. Throws, for
 * toolchain(), when python3 is missing or too old, or PyPI or apt-get cannot deliver.
 */
export async function installPython(): Promise<PythonToolchain> {
  const interpreter = await machinePython();
  const venv = pythonVenvDir(interpreter);
  const python = join(venv, 'bin', 'python');
  const reused = existsSync(join(venv, STAMP)) && existsSync(python);
  const started = performance.now();
  if (!reused) await buildVenv(interpreter, venv);
  const built = reused
    ? 'venv reused'
    : `venv built in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  const libpq5 = (await aptInstall(['libpq5'])).get('libpq5');
  return {
    python,
    venv,
    description: `CPython ${interpreter.version} at ${interpreter.executable}, ${venv} (${built}), Debian libpq5 ${libpq5}`,
  };
}
