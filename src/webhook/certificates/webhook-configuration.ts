// Putting the CA bundle into the MutatingWebhookConfiguration (--webhook-configuration-name): a
// JSON patch per webhook whose caBundle differs, applied only to the version that was read
// (see ca-bundle.ts), re-read and retried when another writer got in between.
import * as k8s from '@kubernetes/client-node';
import { statusOf } from '../../kube/client.ts';
import { bundleGeneration, caBundlePatch, trustedBundles } from './ca-bundle.ts';

export type BundleOutcome =
  /** The bundle is now in every webhook; `patched` says whether this call wrote it. */
  | { status: 'patched' | 'unchanged'; webhooks: number }
  /** No configuration of that name (not installed yet, or not ours to manage). */
  | { status: 'absent' }
  /** The configuration already carries the bundle of a newer Secret generation. */
  | { status: 'stale'; generation: number };

const ATTEMPTS = 5;

export class WebhookConfigurationClient {
  readonly #api: k8s.AdmissionregistrationV1Api;
  readonly name: string;

  constructor(kubeConfig: k8s.KubeConfig, name: string) {
    this.#api = kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
    this.name = name;
  }

  async read(): Promise<k8s.V1MutatingWebhookConfiguration | undefined> {
    try {
      return await this.#api.readMutatingWebhookConfiguration({ name: this.name });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** What the configuration trusts now and the Secret generation that came from (0 if none). */
  async trust(): Promise<{ bundles: string[]; generation: number }> {
    const configuration = await this.read();
    if (!configuration) return { bundles: [], generation: 0 };
    return { bundles: trustedBundles(configuration), generation: bundleGeneration(configuration) };
  }

  async ensureCaBundle(caBundlePem: string, generation: number): Promise<BundleOutcome> {
    for (let attempt = 1; ; attempt++) {
      const configuration = await this.read();
      if (!configuration) return { status: 'absent' };
      const recorded = bundleGeneration(configuration);
      if (recorded > generation) return { status: 'stale', generation: recorded };
      const webhooks = configuration.webhooks?.length ?? 0;
      const patch = caBundlePatch(configuration, caBundlePem, generation);
      if (patch.length === 0) return { status: 'unchanged', webhooks };
      try {
        await this.#api.patchMutatingWebhookConfiguration(
          { name: this.name, body: patch },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
        );
        return { status: 'patched', webhooks };
      } catch (error) {
        // 422: a test operation failed (the object changed since it was read); 409: a write
        // conflict inside the apiserver; 404: deleted meanwhile. Re-read and decide again.
        const status = statusOf(error);
        if (attempt < ATTEMPTS && (status === 422 || status === 409 || status === 404)) continue;
        throw error;
      }
    }
  }
}
