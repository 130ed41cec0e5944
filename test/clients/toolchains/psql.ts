// What docs/aks-guide.md's psql script needs in an image: psql, curl and jq, from Debian (pinned in
// debian-packages.txt) when the command is missing. By command, not by package: a machine with
// PostgreSQL has psql from postgresql-client-<major> without the postgresql-client metapackage,
// and installing that one would upgrade the machine's postgresql-common to match.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { aptInstall } from './debian.ts';

const run = promisify(execFile);
const PACKAGE_OF: Record<string, string> = { psql: 'postgresql-client', curl: 'curl', jq: 'jq' };

/** Installs the packages of the commands missing from PATH; returns the three versions. */
export async function installPsql(): Promise<string> {
  const missing: string[] = [];
  for (const [command, name] of Object.entries(PACKAGE_OF)) {
    const found = await run('sh', ['-c', `command -v ${command}`]).then(
      () => true,
      () => false,
    );
    if (!found) missing.push(name);
  }
  if (missing.length > 0) await aptInstall(missing);
  const versions = await Promise.all(
    Object.keys(PACKAGE_OF).map(
      async (command) => (await run(command, ['--version'])).stdout.trim().split('\n')[0],
    ),
  );
  return versions.join('; ');
}
