// Debian packages for the client suite (Ruby's `pg`, psql, curl, jq), installed as a fresh Debian
// machine gets them: apt-get, as root, at the versions debian-packages.txt pins. Packages already
// installed are left as they are: changing the version of a machine's curl is no test's business.
// The downloaded .debs are kept under ~/.cache/entra-access/clients/debian-<hash of the pins>.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PINS_FILE = new URL('./debian-packages.txt', import.meta.url);

/** package → version, from debian-packages.txt. */
export function debianPins(): Map<string, string> {
  const pins = new Map<string, string>();
  for (const line of readFileSync(PINS_FILE, 'utf8').split('\n')) {
    const entry = line.replace(/#.*/, '').trim();
    if (!entry) continue;
    const [name, version] = entry.split('=', 2);
    if (!name || !version) throw new Error(`debian-packages.txt: "${entry}" is not package=version`);
    pins.set(name, version);
  }
  return pins;
}

/** Where apt keeps the .debs it downloads for these pins. */
export function debianCacheDir(): string {
  const key = createHash('sha256').update(readFileSync(PINS_FILE)).digest('hex').slice(0, 12);
  return join(homedir(), '.cache', 'entra-access', 'clients', `debian-${key}`);
}

/** The installed version of each package dpkg knows as installed. */
async function installedVersions(packages: string[]): Promise<Map<string, string>> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${field} syntax
  const format = '-f=${Package}\t${Status}\t${Version}\n';
  // dpkg-query exits 1 when some package is unknown, yet prints the others: read stdout anyway.
  const result = await run('dpkg-query', ['-W', format, ...packages]).catch((error: { stdout?: string }) => ({
    stdout: error.stdout ?? '',
  }));
  const installed = new Map<string, string>();
  for (const line of result.stdout.split('\n')) {
    const [name, status, version] = line.split('\t');
    if (name && version && status === 'install ok installed') installed.set(name.replace(/:.*/, ''), version);
  }
  return installed;
}

/** The versions apt's index offers for `name` (empty before the first `apt-get update`). */
async function offeredVersions(name: string): Promise<string[]> {
  const { stdout } = await run('apt-cache', ['madison', name]).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .map((line) => line.split('|')[1]?.trim())
    .filter((version): version is string => Boolean(version));
}

async function unavailable(pins: Array<[string, string]>): Promise<Array<[string, string]>> {
  const missing: Array<[string, string]> = [];
  for (const [name, version] of pins)
    if (!(await offeredVersions(name)).includes(version)) missing.push([name, version]);
  return missing;
}

// Another process may hold apt's locks (an unattended upgrade, another suite): wait for them.
const APT_OPTIONS = ['-o', 'DPkg::Lock::Timeout=600'];

/**
 * Makes `packages` installed: those missing are installed at their pinned versions with
 * `apt-get install --no-install-recommends`, after an `apt-get update` only when the index lacks
 * a pinned version. Returns the version of each package now installed. Throws (for toolchain())
 * off Debian, without root, for a package with no pin, or when Debian no longer offers a pin.
 */
export async function aptInstall(packages: string[]): Promise<Map<string, string>> {
  const pins = debianPins();
  const unpinned = packages.filter((name) => !pins.has(name));
  if (unpinned.length > 0) throw new Error(`no pin in debian-packages.txt for ${unpinned.join(', ')}`);
  if (!existsSync('/usr/bin/dpkg-query') || !existsSync('/usr/bin/apt-get')) {
    throw new Error('apt-get and dpkg are missing: the Debian toolchain needs a Debian-based machine');
  }

  const before = await installedVersions(packages);
  for (const name of packages) {
    const version = before.get(name);
    if (version && version !== pins.get(name)) {
      console.warn(
        `[clients] Debian ${name} is installed at ${version} (pinned ${pins.get(name)}); using it`,
      );
    }
  }
  const missing = packages
    .filter((name) => !before.has(name))
    .map((name): [string, string] => [name, pins.get(name)!]);
  if (missing.length === 0) return before;
  if (process.getuid?.() !== 0) {
    throw new Error(`installing ${missing.map(([name]) => name).join(', ')} with apt-get needs root`);
  }

  if ((await unavailable(missing)).length > 0) {
    await run('apt-get', [...APT_OPTIONS, 'update'], { maxBuffer: 16 << 20 });
    const gone = await unavailable(missing);
    if (gone.length > 0) {
      const offers = await Promise.all(
        gone.map(async ([name, version]) => {
          const offered = await offeredVersions(name);
          return `${name}=${version} (offered: ${offered.join(', ') || 'none'})`;
        }),
      );
      throw new Error(
        `Debian does not offer ${offers.join('; ')}: update test/clients/toolchains/debian-packages.txt`,
      );
    }
  }

  const cache = debianCacheDir();
  await mkdir(join(cache, 'partial'), { recursive: true });
  await run(
    'apt-get',
    [
      ...APT_OPTIONS,
      '-o',
      `Dir::Cache::Archives=${cache}/`,
      'install',
      '-y',
      '--no-install-recommends',
      ...missing.map(([name, version]) => `${name}=${version}`),
    ],
    { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 << 20 },
  );
  const after = await installedVersions(packages);
  const absent = packages.filter((name) => !after.has(name));
  if (absent.length > 0) throw new Error(`apt-get did not install ${absent.join(', ')}`);
  console.warn(
    `[clients] apt-get installed ${missing.map(([name]) => `${name}=${after.get(name)}`).join(', ')}`,
  );
  return after;
}
