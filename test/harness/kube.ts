// The Kubernetes API pieces tests that call the apiserver repeat: the product's API group and
// version, the merge-patch header, and the webhook entry of a MutatingWebhookConfiguration that a
// test registers for entra-access itself. Plain values and builders, free of vitest.
import * as k8s from '@kubernetes/client-node';
import {
  GROUP,
  NAMESPACE_WEBHOOK_PATH,
  POD_WEBHOOK_PATH,
  SERVICE_ACCOUNT_WEBHOOK_PATH,
  VERSION,
} from '../../src/api/constants.ts';

/** `{ ...API, plural }` names a custom resource of the product for CustomObjectsApi. */
export const API = { group: GROUP, version: VERSION } as const;

/** The options of a JSON merge patch (RFC 7386) call: `patch…({ …, body }, mergePatch)`. */
export const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export interface WebhookOptions {
  name: string;
  url: string;
  /** Base64 PEM bundle; leave it out where the webhook in mode self writes it. */
  caBundle?: string;
  namespaceSelector: k8s.V1LabelSelector;
  resource: 'pods' | 'serviceaccounts' | 'namespaces';
  operations: string[];
  failurePolicy: 'Fail' | 'Ignore';
}

/**
 * One webhook of a MutatingWebhookConfiguration routed to entra-access: admission review v1,
 * NoneOnDryRun and reinvocation IfNeeded as the chart registers it, and a 5 s timeout.
 */
export function mutatingWebhook(options: WebhookOptions): k8s.V1MutatingWebhook {
  return {
    name: options.name,
    admissionReviewVersions: ['v1'],
    sideEffects: 'NoneOnDryRun',
    reinvocationPolicy: 'IfNeeded',
    timeoutSeconds: 5,
    failurePolicy: options.failurePolicy,
    clientConfig:
      options.caBundle === undefined
        ? { url: options.url }
        : { url: options.url, caBundle: options.caBundle },
    namespaceSelector: options.namespaceSelector,
    rules: [
      { apiGroups: [''], apiVersions: ['v1'], resources: [options.resource], operations: options.operations },
    ],
  };
}

/** entra-access's pod webhook (create, failurePolicy Fail) at `baseUrl`, for pods in `namespaceSelector`. */
export function podWebhook(options: {
  baseUrl: string;
  caBundle?: string;
  namespaceSelector: k8s.V1LabelSelector;
}): k8s.V1MutatingWebhook {
  return mutatingWebhook({
    name: 'pods.entra-access.io',
    url: `${options.baseUrl}${POD_WEBHOOK_PATH}`,
    caBundle: options.caBundle,
    namespaceSelector: options.namespaceSelector,
    resource: 'pods',
    operations: ['CREATE'],
    failurePolicy: 'Fail',
  });
}

export interface EntraAccessWebhooksOptions {
  /** https://host:port of the webhook server. */
  baseUrl: string;
  caBundle?: string;
  /** The namespaces whose pods and service accounts go to the webhook. */
  optedIn: k8s.V1LabelSelector;
  /** The namespaces the namespace webhook sees. */
  namespaces: k8s.V1LabelSelector;
  /** Every webhook Fail, so that any failed admission fails its call (default: as the chart). */
  allFail?: boolean;
}

/**
 * The three webhooks entra-access serves, as the chart registers them: pods (create) and service
 * accounts (create, update) in `optedIn` namespaces, and namespaces (create, update); pods Fail,
 * the other two Ignore unless `allFail`.
 */
export function entraAccessWebhooks(options: EntraAccessWebhooksOptions): k8s.V1MutatingWebhook[] {
  const { baseUrl, caBundle } = options;
  const onCreateAndUpdate = (
    resource: 'serviceaccounts' | 'namespaces',
    path: string,
    namespaceSelector: k8s.V1LabelSelector,
  ) =>
    mutatingWebhook({
      name: `${resource}.entra-access.io`,
      url: `${baseUrl}${path}`,
      caBundle,
      namespaceSelector,
      resource,
      operations: ['CREATE', 'UPDATE'],
      failurePolicy: options.allFail ? 'Fail' : 'Ignore',
    });
  return [
    podWebhook({ baseUrl, caBundle, namespaceSelector: options.optedIn }),
    onCreateAndUpdate('serviceaccounts', SERVICE_ACCOUNT_WEBHOOK_PATH, options.optedIn),
    onCreateAndUpdate('namespaces', NAMESPACE_WEBHOOK_PATH, options.namespaces),
  ];
}

/** A pod of `serviceAccountName` to admit: one app container, no env or volumes of its own. */
export function appPod(
  serviceAccountName: string,
  metadata: { generateName: string; namespace?: string },
): k8s.V1Pod {
  return {
    metadata,
    spec: { serviceAccountName, containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  };
}
