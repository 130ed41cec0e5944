// docs/aks-guide.md's Ruby snippet (the `pg` gem, and the token exchange done by hand with
// Net::HTTP), run as written in the world's pod with Debian's ruby and ruby-pg: the gem links
// Debian 12's libpq 15, which is what an app image built on debian:12 gets.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, it } from 'vitest';
import { clientWorld, expectAppAnswer, podSandbox, toolchain } from './context.ts';
import { guideSnippet } from './snippets.ts';
import { installRuby } from './toolchains/ruby.ts';

const ctx = clientWorld();

describe.skipIf(!ctx)('Ruby: pg with a hand-made token exchange, as docs/aks-guide.md shows it', () => {
  let unavailable: string | undefined;
  beforeAll(async () => {
    unavailable = await toolchain('Ruby (Debian ruby, ruby-pg)', async () => {
      const started = Date.now();
      const versions = await installRuby();
      console.warn(`[clients] ${versions} (ready in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    });
  });

  it('reads the granted table and is refused the other', async (test) => {
    if (unavailable) test.skip(unavailable);
    const { info, world } = ctx!;
    const dir = await mkdtemp(join(info.dir, 'ruby-app-'));
    await writeFile(join(dir, 'app.rb'), guideSnippet('ruby').code);
    // The snippet defines `connect`; the driver is the app's code around it. The refusal is the
    // server's primary message, as PG::InsufficientPrivilege carries it.
    await writeFile(
      join(dir, 'driver.rb'),
      [
        'require_relative "app"',
        'require "json"',
        'conn = connect',
        `granted = conn.exec("SELECT * FROM ${world.grantedTable}").ntuples`,
        'refused = nil',
        'begin',
        `  conn.exec("SELECT * FROM ${world.ungrantedTable}")`,
        'rescue PG::InsufficientPrivilege => e',
        '  refused = e.result.error_field(PG::Result::PG_DIAG_MESSAGE_PRIMARY)',
        'end',
        'conn.close',
        'puts JSON.generate(granted: granted, refused: refused)',
      ].join('\n'),
    );
    const sandbox = await podSandbox(info, world);
    const result = await sandbox.run('ruby', ['driver.rb'], { cwd: dir });
    expectAppAnswer(result, world);
  });
});
