// docs/aks-guide.md's psycopg 3 snippet (a psycopg_pool ConnectionPool whose connection class puts
// a token from azure.identity's WorkloadIdentityCredential into each new connection), run as
// written in the world's pod with the pinned packages from PyPI (toolchains/python.ts).
//
// It runs twice, once on each libpq an app image gets: the system's (psycopg's pure-Python
// implementation with Debian 12's libpq5, 15) and the one psycopg[binary] bundles (16 or newer).
// libpq 16 added sslrootcert=system, so the snippet's TLS settings must work on both; and the
// wheel's libpq reads "system" from its own OpenSSL's directory (/usr/lib/psycopg-openssl), where
// an image has no certificates, so only a named bundle file works there.
// PSYCOPG_IMPL, the driver's choice of implementation, is the only variable added to the pod's.
//
// The sync credential talks to Entra through requests, which trusts certifi's bundle unless
// REQUESTS_CA_BUNDLE names another: the sandbox names the system bundle, with the harness CA.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AppAnswer, clientWorld, expectAppAnswer, podSandbox, toolchain } from './context.ts';
import { guideSnippet } from './snippets.ts';
import { installPython, type PythonToolchain } from './toolchains/python.ts';

const ctx = clientWorld();

const LIBPQS = [
  { impl: 'python', which: "the system's libpq" },
  { impl: 'binary', which: "psycopg-binary's own libpq" },
] as const;

describe.skipIf(!ctx)(
  'Python: psycopg 3 and psycopg_pool with azure.identity, as docs/aks-guide.md shows it',
  () => {
    let python: PythonToolchain | undefined;
    let unavailable: string | undefined;
    beforeAll(async () => {
      unavailable = await toolchain('Python (venv from PyPI)', async () => {
        python = await installPython();
        console.warn(`[clients] ${python.description}`);
      });
    });

    for (const { impl, which } of LIBPQS) {
      it(`reads the granted table and is refused the other, on ${which}`, async (test) => {
        if (unavailable) test.skip(unavailable);
        const { info, world } = ctx!;
        const dir = await mkdtemp(join(info.dir, `python-psycopg-${impl}-app-`));
        await writeFile(join(dir, 'app.py'), guideSnippet('python-psycopg').code);
        // The snippet is the app's module; the driver is the app's code around it. A pool opened
        // implicitly by its constructor gets a DeprecationWarning from psycopg_pool: an error here.
        await writeFile(
          join(dir, 'driver.py'),
          [
            'import json',
            'import warnings',
            '',
            'warnings.filterwarnings("error", module="psycopg_pool")',
            '',
            'import psycopg',
            '',
            'from app import pool',
            '',
            'try:',
            '    with pool.connection() as conn:',
            `        granted = len(conn.execute("SELECT * FROM ${world.grantedTable}").fetchall())`,
            '    refused = None',
            '    try:',
            '        with pool.connection() as conn:',
            `            conn.execute("SELECT * FROM ${world.ungrantedTable}")`,
            '    except psycopg.errors.InsufficientPrivilege as error:',
            '        refused = error.diag.message_primary',
            'finally:',
            '    pool.close()',
            'answer = {"granted": granted, "refused": refused}',
            'answer["impl"], answer["libpq"] = psycopg.pq.__impl__, psycopg.pq.version()',
            'print(json.dumps(answer))',
            '',
          ].join('\n'),
        );
        const sandbox = await podSandbox(info, world);
        const result = await sandbox.run(python!.python, ['driver.py'], {
          cwd: dir,
          env: { PSYCOPG_IMPL: impl },
        });
        const answer = expectAppAnswer(result, world) as AppAnswer & { impl: string; libpq: number };
        console.warn(`[clients] psycopg ${answer.impl} on libpq ${answer.libpq}`);
        expect(answer.impl).toBe(impl);
        if (impl === 'binary') expect(answer.libpq).toBeGreaterThanOrEqual(160000);
      });
    }
  },
);
