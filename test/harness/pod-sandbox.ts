// Runs a program as the container of an admitted pod would run it, on this machine: there is no
// kubelet, so this plays its part. The program gets
// - the container's env exactly as the apiserver stored it after the webhook (AZURE_* and the
//   app's own PG* variables), and a PATH and HOME as an image would;
// - the projected service-account token at the path AZURE_FEDERATED_TOKEN_FILE names, from a
//   TokenRequest bound to the pod with the volume's audience and lifetime;
// - Entra at its well-known name: login.microsoftonline.com and its aliases resolve to the
//   emulator (harness.ts `wellKnown`), so every SDK runs its default path, instance discovery
//   included.
// Two things differ from a pod on AKS, and only these: the harness CA is trusted (added to the
// system store and Java's, and named in NODE_EXTRA_CA_CERTS and REQUESTS_CA_BUNDLE for the
// runtimes that carry their own store), and AZURE_AUTHORITY_HOST is the public cloud's authority,
// whatever the harness's webhook injected (it injects the emulator's URL for the operator's sake).
//
// The program runs in a mount namespace of its own (unshare, root only): /etc/hosts, the CA
// bundles and the token directory are mounted there over the machine's, and vanish with the
// process. Nothing on the machine changes; the files live in the harness directory.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { ENV_AZURE_AUTHORITY_HOST, TOKEN_VOLUME_NAME } from '../../src/api/constants.ts';
import { PUBLIC_AUTHORITY_HOST } from './azure-emulator/well-known.ts';
import type { HarnessInfo } from './harness.ts';

const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const JAVA_CACERTS = '/etc/ssl/certs/java/cacerts';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  /** Extra variables a test driver passes to its own code (never the app's: those are the pod's). */
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
}

export interface PodSandbox {
  /** What the program sees in its environment (without the driver's extras). */
  env: Record<string, string>;
  /** The file AZURE_FEDERATED_TOKEN_FILE names, with the projected token in it. */
  tokenFile: string;
  run(command: string, args: string[], options?: RunOptions): Promise<RunResult>;
}

export interface PodSandboxOptions {
  /** The container whose env and mounts to use; the first one by default. */
  container?: string;
  /** Also add the harness CA to Java's trust store (costs a keytool run). */
  javaTrust?: boolean;
}

/** Why a sandbox cannot run here, or undefined when it can. */
export function podSandboxUnavailable(info: HarnessInfo): string | undefined {
  if ('unavailable' in info.azure.wellKnown) return info.azure.wellKnown.unavailable;
  if (process.getuid?.() !== 0) return 'the pod sandbox needs root (unshare --mount)';
  return undefined;
}

/** The kubelet's part: a token bound to the pod, with the projected volume's audience and lifetime. */
async function projectedToken(core: k8s.CoreV1Api, pod: k8s.V1Pod): Promise<{ token: string; path: string }> {
  const volume = pod.spec?.volumes?.find((v) => v.name === TOKEN_VOLUME_NAME);
  const source = volume?.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken;
  if (!source) throw new Error(`pod has no ${TOKEN_VOLUME_NAME} projected service-account token`);
  const response = await core.createNamespacedServiceAccountToken({
    namespace: pod.metadata?.namespace ?? '',
    name: pod.spec?.serviceAccountName ?? 'default',
    body: {
      spec: {
        audiences: source.audience ? [source.audience] : [],
        expirationSeconds: source.expirationSeconds ?? 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name, uid: pod.metadata?.uid },
      },
    },
  });
  const token = response.status?.token;
  if (!token) throw new Error('TokenRequest returned no token');
  return { token, path: source.path };
}

/** The container's env as stored; a valueFrom would need the kubelet, so it is refused. */
function containerEnv(container: k8s.V1Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    if (variable.valueFrom)
      throw new Error(`env ${variable.name} uses valueFrom, which the sandbox cannot resolve`);
    env[variable.name] = variable.value ?? '';
  }
  return env;
}

/** The nearest existing directory at or above `path`. */
function existingAncestor(path: string): string {
  let dir = path;
  while (!existsSync(dir)) dir = dirname(dir);
  return dir;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export async function startPodSandbox(
  info: HarnessInfo,
  core: k8s.CoreV1Api,
  pod: k8s.V1Pod,
  options: PodSandboxOptions = {},
): Promise<PodSandbox> {
  const unavailable = podSandboxUnavailable(info);
  if (unavailable) throw new Error(`the pod sandbox cannot run here: ${unavailable}`);
  const wellKnown = info.azure.wellKnown as { ip: string; hostNames: string[] };
  const container = options.container
    ? pod.spec?.containers.find((c) => c.name === options.container)
    : pod.spec?.containers[0];
  if (!container) throw new Error(`pod has no container ${options.container ?? ''}`);
  const mount = container.volumeMounts?.find((m) => m.name === TOKEN_VOLUME_NAME);
  if (!mount) throw new Error(`container ${container.name} does not mount ${TOKEN_VOLUME_NAME}`);

  const dir = await mkdtemp(join(info.dir, 'pod-'));
  // The token directory: an overlay on the nearest existing ancestor of the mount path, whose
  // upper layer holds the directories below it and the token, so /run (say) stays as it is.
  const { token, path } = await projectedToken(core, pod);
  const ancestor = existingAncestor(mount.mountPath);
  const lower = realpathSync(ancestor);
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  const tokenDir = join(upper, relative(ancestor, mount.mountPath));
  await mkdir(tokenDir, { recursive: true });
  await mkdir(work);
  await writeFile(join(tokenDir, path), token, { mode: 0o600 });

  const hosts = join(dir, 'hosts');
  await writeFile(
    hosts,
    `${readFileSync('/etc/hosts', 'utf8').trimEnd()}\n${wellKnown.ip} ${wellKnown.hostNames.join(' ')}\n`,
  );
  const harnessCa = readFileSync(info.caFile, 'utf8');
  const bundle = join(dir, 'ca-certificates.crt');
  const system = existsSync(SYSTEM_CA_BUNDLE) ? readFileSync(SYSTEM_CA_BUNDLE, 'utf8') : '';
  await writeFile(bundle, `${system.trimEnd()}\n${harnessCa}`);
  const mounts: Array<[string, string]> = [
    [hosts, '/etc/hosts'],
    ...(existsSync(SYSTEM_CA_BUNDLE) ? [[bundle, SYSTEM_CA_BUNDLE] as [string, string]] : []),
  ];
  if (options.javaTrust && existsSync(JAVA_CACERTS)) {
    const cacerts = join(dir, 'cacerts');
    await writeFile(cacerts, readFileSync(JAVA_CACERTS));
    execFileSync(
      'keytool',
      [
        '-importcert',
        '-noprompt',
        '-keystore',
        cacerts,
        '-storepass',
        'changeit',
        '-alias',
        'entra-access-harness-ca',
        '-file',
        info.caFile,
      ],
      { stdio: 'pipe' },
    );
    mounts.push([cacerts, JAVA_CACERTS]);
  }
  const setup = [
    'set -e',
    `mount -t overlay overlay -o ${shellQuote(`lowerdir=${lower},upperdir=${upper},workdir=${work}`)} ${shellQuote(lower)}`,
    ...mounts.map(([from, to]) => `mount --bind ${shellQuote(from)} ${shellQuote(to)}`),
    'exec "$@"',
  ].join('\n');

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
    ...containerEnv(container),
    [ENV_AZURE_AUTHORITY_HOST]: PUBLIC_AUTHORITY_HOST,
    NODE_EXTRA_CA_CERTS: info.caFile,
    REQUESTS_CA_BUNDLE: SYSTEM_CA_BUNDLE,
  };

  return {
    env,
    tokenFile: join(mount.mountPath, path),
    run(command, args, runOptions = {}) {
      return new Promise<RunResult>((resolve, reject) => {
        const child = spawn(
          'unshare',
          ['--mount', '--propagation', 'private', '--', 'sh', '-c', setup, 'pod', command, ...args],
          {
            cwd: runOptions.cwd ?? dir,
            env: { ...env, ...runOptions.env },
            stdio: ['pipe', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString('utf8');
        });
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString('utf8');
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), runOptions.timeoutMs ?? 120_000);
        child.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
        child.stdin.end(runOptions.input ?? '');
      });
    },
  };
}
