// docs/aks-guide.md's asyncpg snippet (a pool whose password is a coroutine function, tokens from
// azure.identity.aio's WorkloadIdentityCredential), run as written in the world's pod with the
// pinned packages from PyPI (toolchains/python.ts). azure-identity's WorkloadIdentityCredential
// (sync and aio alike) posts the assertion straight to <AZURE_AUTHORITY_HOST><tenant>/oauth2/v2.0/
// token, with no instance or tenant discovery: that is its default path, and the one run here. The
// aio credential's aiohttp trusts OpenSSL's default store, not certifi nor REQUESTS_CA_BUNDLE:
// Python's OpenSSL reads /usr/lib/ssl/cert.pem, the system bundle, which in the sandbox holds
// the harness CA. asyncpg's ssl.create_default_context() verifies the server against it too.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, it } from 'vitest';
import { clientWorld, expectAppAnswer, podSandbox, toolchain } from './context.ts';
import { guideSnippet } from './snippets.ts';
import { installPython, type PythonToolchain } from './toolchains/python.ts';

const ctx = clientWorld();

describe.skipIf(!ctx)('Python: asyncpg with azure.identity.aio, as docs/aks-guide.md shows it', () => {
  let python: PythonToolchain | undefined;
  let unavailable: string | undefined;
  beforeAll(async () => {
    unavailable = await toolchain('Python (venv from PyPI)', async () => {
      python = await installPython();
      console.warn(`[clients] ${python.description}`);
    });
  });

  it('reads the granted table and is refused the other', async (test) => {
    if (unavailable) test.skip(unavailable);
    const { info, world } = ctx!;
    const dir = await mkdtemp(join(info.dir, 'python-asyncpg-app-'));
    await writeFile(join(dir, 'app.py'), guideSnippet('python-asyncpg').code);
    // The snippet is the app's module; the driver is the app's code around it. It closes the
    // credential as the snippet says an app does at shutdown (aiohttp warns about an open session).
    await writeFile(
      join(dir, 'driver.py'),
      [
        'import asyncio',
        'import json',
        '',
        'import asyncpg',
        '',
        'import app',
        '',
        '',
        'async def main():',
        '    pool = await app.make_pool()',
        '    try:',
        `        granted = len(await pool.fetch("SELECT * FROM ${world.grantedTable}"))`,
        '        refused = None',
        '        try:',
        `            await pool.fetch("SELECT * FROM ${world.ungrantedTable}")`,
        '        except asyncpg.InsufficientPrivilegeError as error:',
        '            refused = str(error)',
        '    finally:',
        '        await pool.close()',
        '        await app.credential.close()',
        '    print(json.dumps({"granted": granted, "refused": refused}))',
        '',
        '',
        'asyncio.run(main())',
        '',
      ].join('\n'),
    );
    const sandbox = await podSandbox(info, world);
    const result = await sandbox.run(python!.python, ['driver.py'], { cwd: dir });
    expectAppAnswer(result, world);
  });
});
