// docs/aks-guide.md's psql script (curl and jq exchange the pod's federated token, psql logs in
// with it), run as written in the world's pod with Debian's postgresql-client, curl and jq. The
// script takes psql's arguments, so the driver runs it once per table, as a job would.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, it } from 'vitest';
import { clientWorld, expectAppAnswer, podSandbox, toolchain } from './context.ts';
import { guideSnippet } from './snippets.ts';
import { installPsql } from './toolchains/psql.ts';

const ctx = clientWorld();

describe.skipIf(!ctx)('psql: a curl + jq token exchange, as docs/aks-guide.md shows it', () => {
  let unavailable: string | undefined;
  beforeAll(async () => {
    unavailable = await toolchain('psql (Debian postgresql-client, curl, jq)', async () => {
      const started = Date.now();
      const versions = await installPsql();
      console.warn(`[clients] ${versions} (ready in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    });
  });

  it('reads the granted table and is refused the other', async (test) => {
    if (unavailable) test.skip(unavailable);
    const { info, world } = ctx!;
    const dir = await mkdtemp(join(info.dir, 'psql-app-'));
    await writeFile(join(dir, 'psql-entra'), guideSnippet('psql').code, { mode: 0o755 });
    // Rows are counted from psql's unaligned output, one line each; the refusal is what psql
    // prints on stderr for the server's error.
    await writeFile(
      join(dir, 'driver.sh'),
      [
        'set -u',
        `rows=$(./psql-entra --no-align --tuples-only --command 'SELECT * FROM ${world.grantedTable}') || exit 1`,
        `granted=$(printf '%s\\n' "$rows" | grep --count . || true)`,
        `if refused=$(./psql-entra --command 'SELECT * FROM ${world.ungrantedTable}' 2>&1 >/dev/null); then`,
        `  echo '${world.ungrantedTable} was not refused' >&2`,
        '  exit 1',
        'fi',
        `jq --null-input --compact-output --argjson granted "$granted" --arg refused "$refused" '{granted: $granted, refused: $refused}'`,
      ].join('\n'),
    );
    const sandbox = await podSandbox(info, world);
    const result = await sandbox.run('sh', ['driver.sh'], { cwd: dir });
    expectAppAnswer(result, world);
  });
});
