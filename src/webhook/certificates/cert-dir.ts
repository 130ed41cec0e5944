// Writing the serving pair into --cert-dir so the CertificateWatcher swaps it in without a
// restart. Atomic the way the kubelet updates Secret volumes: the files go into a new hidden
// directory, the `..data` symlink is renamed over to point at it, and tls.crt, tls.key and ca.crt
// are symlinks through `..data`. A reader sees the old pair or the new one, never half of each.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const DATA_LINK = '..data';

export interface ServingFiles {
  'tls.crt': string;
  'tls.key': string;
  'ca.crt': string;
}

/** tls.crt, tls.key (and ca.crt, if there) as they are in `dir` now; undefined without the pair. */
export async function readServingPair(
  dir: string,
): Promise<{ cert: string; key: string; ca: string | undefined } | undefined> {
  try {
    const [cert, key, ca] = await Promise.all([
      readFile(join(dir, 'tls.crt'), 'utf8'),
      readFile(join(dir, 'tls.key'), 'utf8'),
      readFile(join(dir, 'ca.crt'), 'utf8').catch(() => undefined),
    ]);
    return { cert, key, ca };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function replaceSymlink(target: string, path: string): Promise<void> {
  const temporary = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  await symlink(target, temporary);
  await rename(temporary, path);
}

export async function writeServingFiles(dir: string, files: ServingFiles): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const version = `..${new Date().toISOString().replaceAll(':', '_')}.${randomBytes(4).toString('hex')}`;
  const versionDir = join(dir, version);
  await mkdir(versionDir, { mode: 0o755 });
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(versionDir, name), content, { mode: name.endsWith('.key') ? 0o600 : 0o644 });
  }
  // The switch: one rename, atomic on POSIX file systems.
  await replaceSymlink(version, join(dir, DATA_LINK));
  for (const name of Object.keys(files)) {
    const link = join(DATA_LINK, name);
    const current = await readlink(join(dir, name)).catch(() => undefined);
    if (current !== link) await replaceSymlink(link, join(dir, name));
  }
  // Earlier versions (with their private keys) go once nothing points at them.
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && entry.name.startsWith('..') && entry.name !== version) {
      await rm(join(dir, entry.name), { recursive: true, force: true });
    }
  }
}
