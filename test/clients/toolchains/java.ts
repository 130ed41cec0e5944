// The Java client's toolchain: the machine's JDK and Maven, and the jars test/clients/java/pom.xml
// pins, from Maven Central. Maven resolves them once (into its own ~/.m2) and copies them into
// ~/.cache/entra-access/clients/java-<hash of the pom>, so a change of any pin resolves afresh and
// later runs only check the copy. The app is not built with Maven: the test runs the snippet with
// Java's single-file source launcher against these jars, one JVM in all.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

const JAVA_SYSTEM_CACERTS = '/etc/ssl/certs/java/cacerts';

export const JAVA_POM = fileURLToPath(new URL('../java/pom.xml', import.meta.url));

export interface JavaToolchain {
  /** The `java` launcher: the JDK on PATH (or JAVA_HOME), whose cacerts the pod sandbox extends. */
  java: string;
  /** The pinned jars, as a class path for `java -cp`. */
  classPath: string;
  /** Where the jars are cached. */
  cacheDir: string;
}

/** A JDK program: from JAVA_HOME when it is set, else the one on PATH. */
function jdkTool(name: string): string {
  const home = process.env.JAVA_HOME;
  return home && existsSync(join(home, 'bin', name)) ? join(home, 'bin', name) : name;
}

/** What a command prints, stdout and stderr together. */
async function output(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(command, args, { timeout: 60_000 });
    return `${stdout}${stderr}`;
  } catch (error) {
    throw new Error(`${command} ${args.join(' ')} failed: ${(error as Error).message}`);
  }
}

/** Makes the pinned jars ready (resolving them from Maven Central when the cache lacks them). */
export async function installJava(): Promise<JavaToolchain> {
  const java = jdkTool('java');
  const settings = await output(java, ['-XshowSettings:properties', '-version']);
  const property = (name: string) =>
    new RegExp(`^\\s*${name} = (.*)$`, 'm').exec(settings)?.[1]?.trim() ?? '';
  // The source launcher needs Java 11+; the pinned libraries need 11+ too (HikariCP 7).
  const major = Number(property('java.specification.version').split('.').at(-1));
  if (!(major >= 11)) throw new Error(`Java 11 or newer is needed, ${java} is ${property('java.version')}`);
  // The pod sandbox adds the harness CA to the system's Java store (as a pod's image would have
  // its own); a JDK with a cacerts of its own (a Temurin tarball, say) would not see it.
  const cacerts = join(property('java.home'), 'lib', 'security', 'cacerts');
  if (!existsSync(cacerts) || realpathSync(cacerts) !== JAVA_SYSTEM_CACERTS) {
    throw new Error(
      `${java}'s trust store ${cacerts} is not ${JAVA_SYSTEM_CACERTS}, which the pod sandbox extends`,
    );
  }

  const pom = readFileSync(JAVA_POM);
  const key = createHash('sha256').update(pom).digest('hex').slice(0, 16);
  const cacheDir = join(homedir(), '.cache', 'entra-access', 'clients', `java-${key}`);
  const lib = join(cacheDir, 'lib');
  const done = join(cacheDir, 'jars.txt');
  if (!complete(lib, done)) {
    await output('mvn', ['-v']);
    // Into a fresh directory, then renamed: an interrupted copy never passes for a cache.
    const staging = `${lib}.partial`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(dirname(staging), { recursive: true });
    try {
      await run(
        'mvn',
        ['-B', '-q', '-f', JAVA_POM, 'dependency:copy-dependencies', `-DoutputDirectory=${staging}`],
        { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 },
      );
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(`mvn could not resolve ${JAVA_POM}: ${(error as Error).message}\n${stdout}${stderr}`);
    }
    const jars = (await readdir(staging)).filter((f) => f.endsWith('.jar')).sort();
    if (jars.length === 0) throw new Error(`mvn copied no jars for ${JAVA_POM}`);
    await rm(lib, { recursive: true, force: true });
    await rename(staging, lib);
    await writeFile(done, `${jars.join('\n')}\n`);
  }
  return { java, classPath: join(lib, '*'), cacheDir };
}

/** Whether a previous install finished: its list of jars is written last, and every jar is there. */
function complete(lib: string, done: string): boolean {
  if (!existsSync(done)) return false;
  const jars = readFileSync(done, 'utf8').split('\n').filter(Boolean);
  return jars.length > 0 && jars.every((jar) => existsSync(join(lib, jar)));
}
