// Ruby and the `pg` gem as Debian ships them (ruby, ruby-pg, pinned in debian-packages.txt):
// what an app image built FROM debian:12 with apt-get gets. The gem links the system's libpq.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { aptInstall } from './debian.ts';

const run = promisify(execFile);

/** Installs what is missing and returns the `pg` gem's and libpq's versions, as Ruby sees them. */
export async function installRuby(): Promise<string> {
  await aptInstall(['ruby', 'ruby-pg']);
  const { stdout } = await run('ruby', [
    '-rpg',
    '-e',
    'puts "ruby #{RUBY_VERSION}, pg #{PG::VERSION}, libpq #{PG.library_version}"',
  ]);
  return stdout.trim();
}
