// Where the control-plane binaries come from, in order: explicit TEST_ASSET_* paths, a
// KUBEBUILDER_ASSETS directory (as setup-envtest provides), else a build from the Go module
// proxy at the pinned version (hack/build-control-plane.sh), cached outside the repo.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface ControlPlaneAssets {
  kubeApiserver: string;
  etcd: string;
  source: string;
}

const buildScript = new URL('../../hack/build-control-plane.sh', import.meta.url).pathname;

export function findControlPlaneAssets(env: NodeJS.ProcessEnv = process.env): ControlPlaneAssets {
  const explicitApiserver = env.TEST_ASSET_KUBE_APISERVER;
  const explicitEtcd = env.TEST_ASSET_ETCD;
  const dir = env.KUBEBUILDER_ASSETS;
  const kubeApiserver = explicitApiserver ?? (dir ? join(dir, 'kube-apiserver') : undefined);
  const etcd = explicitEtcd ?? (dir ? join(dir, 'etcd') : undefined);
  if (kubeApiserver && etcd) {
    for (const file of [kubeApiserver, etcd]) {
      if (!existsSync(file))
        throw new Error(
          `control-plane binary ${file} does not exist (check KUBEBUILDER_ASSETS / TEST_ASSET_*)`,
        );
    }
    return { kubeApiserver, etcd, source: dir ? `KUBEBUILDER_ASSETS=${dir}` : 'TEST_ASSET_*' };
  }
  // Cached after the first build; the script prints the directory and exits at once when warm.
  const built = execFileSync('bash', [buildScript], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop();
  if (!built) throw new Error(`${buildScript} printed no directory`);
  return { kubeApiserver: join(built, 'kube-apiserver'), etcd: join(built, 'etcd'), source: built };
}
