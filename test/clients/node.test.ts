// docs/aks-guide.md's Node.js snippet (pg + @azure/identity), run as written in the world's pod:
// WorkloadIdentityCredential with no options, so MSAL's instance discovery goes to
// login.microsoftonline.com, which is the emulator inside the sandbox.
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { clientWorld, expectAppAnswer, podSandbox } from './context.ts';
import { guideSnippet } from './snippets.ts';

const ctx = clientWorld();
const REPO_NODE_MODULES = fileURLToPath(new URL('../../node_modules', import.meta.url));

describe.skipIf(!ctx)('Node.js: node-postgres with @azure/identity, as docs/aks-guide.md shows it', () => {
  it('reads the granted table and is refused the other', async () => {
    const { info, world } = ctx!;
    const snippet = guideSnippet('node');
    const dir = await mkdtemp(join(info.dir, 'node-app-'));
    // The app's own package: the snippet as its module, and the packages it imports.
    await symlink(REPO_NODE_MODULES, join(dir, 'node_modules'));
    await writeFile(join(dir, 'app.mjs'), snippet.code);
    await writeFile(
      join(dir, 'driver.mjs'),
      [
        "const { pool } = await import('./app.mjs');",
        `const granted = await pool.query('SELECT * FROM ${world.grantedTable}');`,
        'let refused = null;',
        `try { await pool.query('SELECT * FROM ${world.ungrantedTable}'); } catch (error) { refused = error.message; }`,
        'await pool.end();',
        'console.log(JSON.stringify({ granted: granted.rowCount, refused }));',
      ].join('\n'),
    );
    const sandbox = await podSandbox(info, world);
    const result = await sandbox.run(process.execPath, ['driver.mjs'], { cwd: dir });
    expectAppAnswer(result, world);
  });
});
