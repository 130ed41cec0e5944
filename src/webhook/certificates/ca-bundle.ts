// The CA bundle in a MutatingWebhookConfiguration: which JSON patch puts ours into every webhook.
// Pure.
//
// The configuration records, in an annotation, the generation of the certificate Secret its bundle
// came from. A replica only writes a bundle from a generation at least as new, and its patch
// tests the resourceVersion it read, so a replica acting on a Secret it read just before a
// rotation can never put the previous bundle back over the new one.

import { pointer } from '../policy/json-pointer.ts';

export const CA_BUNDLE_GENERATION_ANNOTATION = 'entra-access.io/ca-bundle-generation';

export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

/** The parts of a MutatingWebhookConfiguration this module reads. */
export interface WebhookConfigurationView {
  metadata?: { resourceVersion?: string; annotations?: Record<string, string> };
  webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string } }>;
}

/** The Secret generation the configuration's bundle came from; 0 when it does not say. */
export function bundleGeneration(configuration: WebhookConfigurationView): number {
  const value = Number(configuration.metadata?.annotations?.[CA_BUNDLE_GENERATION_ANNOTATION] ?? 0);
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}

/** The PEM CA certificates every webhook of the configuration trusts now (deduplicated). */
export function trustedBundles(configuration: WebhookConfigurationView): string[] {
  const bundles = new Set<string>();
  for (const webhook of configuration.webhooks ?? []) {
    const caBundle = webhook.clientConfig?.caBundle;
    if (caBundle) bundles.add(Buffer.from(caBundle, 'base64').toString('utf8'));
  }
  return [...bundles];
}

/**
 * The JSON patch that sets `caBundlePem` (base64, as the API stores it) into every webhook whose
 * caBundle differs, and records `generation`; empty when there is nothing to change. The patch
 * first tests the resourceVersion and each touched webhook's name, so it applies to exactly the
 * object that was read or not at all.
 */
export function caBundlePatch(
  configuration: WebhookConfigurationView,
  caBundlePem: string,
  generation: number,
): JsonPatchOperation[] {
  const caBundle = Buffer.from(caBundlePem, 'utf8').toString('base64');
  const operations: JsonPatchOperation[] = [];
  (configuration.webhooks ?? []).forEach((webhook, index) => {
    if (webhook.clientConfig?.caBundle === caBundle) return;
    operations.push(
      { op: 'test', path: `/webhooks/${index}/name`, value: webhook.name },
      { op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle },
    );
  });
  const annotations = configuration.metadata?.annotations;
  if (annotations?.[CA_BUNDLE_GENERATION_ANNOTATION] !== String(generation)) {
    operations.push(
      annotations
        ? {
            op: 'add',
            path: pointer('metadata', 'annotations', CA_BUNDLE_GENERATION_ANNOTATION),
            value: String(generation),
          }
        : {
            op: 'add',
            path: '/metadata/annotations',
            value: { [CA_BUNDLE_GENERATION_ANNOTATION]: String(generation) },
          },
    );
  }
  if (operations.length === 0) return [];
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: configuration.metadata?.resourceVersion ?? '' },
    ...operations,
  ];
}
