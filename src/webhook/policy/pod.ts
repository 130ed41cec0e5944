// The Pod mutation (docs/design.md §4): in an opted-in namespace, a pod whose service account is
// workload-identity enabled gets the `azure.workload.identity/use` label and the extra labels;
// in `inject` mode also what the Azure workload-identity webhook would add (env, projected token
// volume, mounts), with the same conventions so the Azure SDKs work unchanged.
//
// Every change is an `add` keyed by name (label key, env var name, volume name), computed from the
// raw request object, so fields the code does not model survive and a reinvocation adds nothing.

import {
  ENV_AZURE_AUTHORITY_HOST,
  ENV_AZURE_CLIENT_ID,
  ENV_AZURE_FEDERATED_TOKEN_FILE,
  ENV_AZURE_TENANT_ID,
  TOKEN_AUDIENCE,
  TOKEN_EXPIRATION_DEFAULT_SECONDS,
  TOKEN_EXPIRATION_MAX_SECONDS,
  TOKEN_EXPIRATION_MIN_SECONDS,
  TOKEN_FILE_NAME,
  TOKEN_FILE_PATH,
  TOKEN_MOUNT_PATH,
  TOKEN_VOLUME_NAME,
  WI_CLIENT_ID_ANNOTATION,
  WI_SKIP_CONTAINERS_ANNOTATION,
  WI_TENANT_ID_ANNOTATION,
  WI_TOKEN_EXPIRATION_ANNOTATION,
  WI_USE_LABEL,
  WI_USE_VALUE,
} from '../../api/constants.ts';
import {
  addMapEntries,
  annotation,
  appendItems,
  at,
  isPlainObject,
  labelsOf,
  nonBlank,
  own,
} from './plain.ts';
import type { PatchOperation, PodPolicyInput, PolicyResult } from './types.ts';

/** The container lists injection applies to, in the order patched. Ephemeral containers are not among them. */
const CONTAINER_LISTS = ['initContainers', 'containers'] as const;

const WHOLE_SECONDS = /^[0-9]+$/;

type Expiration = { seconds: number } | { denied: string };

/**
 * The token's expirationSeconds: the pod's annotation, else the service account's, else 3600.
 * A value that is not a whole number of seconds within 3600–86400 denies the pod.
 */
export function tokenExpiration(
  pod: Record<string, unknown>,
  serviceAccount: Record<string, unknown> | undefined,
): Expiration {
  const fromPod = annotation(pod, WI_TOKEN_EXPIRATION_ANNOTATION);
  const fromSa = annotation(serviceAccount, WI_TOKEN_EXPIRATION_ANNOTATION);
  let raw: string;
  let where: string;
  if (fromPod !== undefined) {
    raw = fromPod;
    where = 'pod annotation';
  } else if (fromSa !== undefined) {
    raw = fromSa;
    const saName = nonBlank(at(serviceAccount, 'metadata', 'name')) ?? '';
    where = `service account "${saName}" annotation`;
  } else {
    return { seconds: TOKEN_EXPIRATION_DEFAULT_SECONDS };
  }
  const bounds = `a whole number of seconds from ${TOKEN_EXPIRATION_MIN_SECONDS} to ${TOKEN_EXPIRATION_MAX_SECONDS} (1 to 24 hours)`;
  const trimmed = raw.trim();
  if (!WHOLE_SECONDS.test(trimmed)) {
    return {
      denied: `${where} ${WI_TOKEN_EXPIRATION_ANNOTATION}="${raw}" is not ${bounds}; fix it or remove it to get the default of ${TOKEN_EXPIRATION_DEFAULT_SECONDS}`,
    };
  }
  const seconds = Number(trimmed);
  if (seconds < TOKEN_EXPIRATION_MIN_SECONDS || seconds > TOKEN_EXPIRATION_MAX_SECONDS) {
    return {
      denied: `${where} ${WI_TOKEN_EXPIRATION_ANNOTATION}="${raw}" is outside the allowed range: it must be ${bounds}`,
    };
  }
  return { seconds };
}

/** Container names from the `;`-separated skip-containers annotation, spaces trimmed, blanks dropped. */
export function skippedContainers(pod: Record<string, unknown>): Set<string> {
  const raw = annotation(pod, WI_SKIP_CONTAINERS_ANNOTATION) ?? '';
  return new Set(raw.split(';').flatMap((name) => nonBlank(name) ?? []));
}

/**
 * The labels to add: `azure.workload.identity/use: "true"` first, then the namespace's extra
 * labels, then the global ones; on the same key the earlier source wins (the namespace overrides
 * the global flag, and no extra label can change the `use` label). A key the pod already has is
 * never touched, whatever its value.
 */
function wantedLabels(input: PodPolicyInput, warnings: string[]): [string, string][] {
  const podLabels = labelsOf(input.pod);
  const chosen = new Map<string, string>([[WI_USE_LABEL, WI_USE_VALUE]]);
  const sources = [
    [input.namespace.extraPodLabels, `namespace "${input.namespace.name}" extra pod labels`],
    [input.settings.extraPodLabels, '--extra-pod-labels'],
  ] as const;
  for (const [labels, origin] of sources) {
    for (const [key, value] of Object.entries(labels)) {
      if (key === WI_USE_LABEL && value !== WI_USE_VALUE) {
        warnings.push(`${origin}: ${key}=${value} ignored; entra-access always sets ${key}=${WI_USE_VALUE}`);
        continue;
      }
      if (!chosen.has(key)) chosen.set(key, value);
    }
  }
  return [...chosen].filter(([key]) => !Object.hasOwn(podLabels, key));
}

/** The name of each entry of an array of named things (env vars, mounts, volumes). */
function names(list: unknown): Set<string> {
  const found = new Set<string>();
  if (Array.isArray(list)) {
    for (const item of list) {
      const name = own(item, 'name');
      if (typeof name === 'string') found.add(name);
    }
  }
  return found;
}

/**
 * Labels a workload-identity pod and, in `inject` mode, injects env, token volume and mounts.
 * Untouched (empty patch, no warnings): namespace not opted in; no client ID from a binding, the
 * namespace default or the service account's annotation; or the pod sets the `use` label to
 * something other than "true", which opts it out (as it does for the Azure webhook).
 */
export function mutatePod(input: PodPolicyInput): PolicyResult {
  const { pod, namespace, serviceAccount, binding, settings } = input;
  const untouched: PolicyResult = { patch: [], warnings: [] };
  if (!namespace.optedIn) return untouched;
  const saClientId = nonBlank(annotation(serviceAccount, WI_CLIENT_ID_ANNOTATION));
  const clientId = saClientId ?? nonBlank(binding?.clientId) ?? namespace.defaultClientId;
  if (clientId === undefined) return untouched;
  const useLabel = own(labelsOf(pod), WI_USE_LABEL);
  if (useLabel !== undefined && useLabel !== WI_USE_VALUE) return untouched;

  const warnings = [...namespace.extraPodLabelErrors];
  let expirationSeconds = TOKEN_EXPIRATION_DEFAULT_SECONDS;
  if (settings.mode === 'inject') {
    const expiration = tokenExpiration(pod, serviceAccount);
    if ('denied' in expiration) return { patch: [], warnings, denied: expiration.denied };
    expirationSeconds = expiration.seconds;
  }

  const patch: PatchOperation[] = addMapEntries(pod, ['metadata', 'labels'], wantedLabels(input, warnings));
  if (settings.mode !== 'inject') return { patch, warnings };

  const tenantId =
    nonBlank(annotation(serviceAccount, WI_TENANT_ID_ANNOTATION)) ??
    nonBlank(binding?.tenantId) ??
    nonBlank(settings.tenantId);
  const env: [string, string | undefined][] = [
    [ENV_AZURE_CLIENT_ID, clientId],
    [ENV_AZURE_TENANT_ID, tenantId],
    [ENV_AZURE_FEDERATED_TOKEN_FILE, TOKEN_FILE_PATH],
    [ENV_AZURE_AUTHORITY_HOST, nonBlank(settings.authorityHost)],
  ];
  const skipped = skippedContainers(pod);
  let injected = false;

  for (const list of CONTAINER_LISTS) {
    const containers = at(pod, 'spec', list);
    if (!Array.isArray(containers)) continue;
    containers.forEach((container: unknown, index) => {
      if (!isPlainObject(container)) return;
      const name = own(container, 'name');
      if (typeof name === 'string' && skipped.has(name)) return;
      injected = true;
      const path = ['spec', list, index] as const;

      const present = names(own(container, 'env'));
      const missing = env.flatMap(([envName, value]) =>
        value === undefined || present.has(envName) ? [] : [{ name: envName, value }],
      );
      patch.push(...appendItems(pod, [...path, 'env'], missing));

      const declared = own(container, 'volumeMounts');
      const mounts: unknown[] = Array.isArray(declared) ? declared : [];
      const mountedByName = mounts.some((mount) => own(mount, 'name') === TOKEN_VOLUME_NAME);
      const pathTaken = mounts.find((mount) => own(mount, 'mountPath') === TOKEN_MOUNT_PATH);
      if (!mountedByName && pathTaken !== undefined) {
        warnings.push(
          `container "${String(name)}" already mounts volume "${String(own(pathTaken, 'name'))}" at ${TOKEN_MOUNT_PATH}; the ${TOKEN_VOLUME_NAME} volume is not mounted there`,
        );
      } else if (!mountedByName) {
        patch.push(
          ...appendItems(
            pod,
            [...path, 'volumeMounts'],
            [{ name: TOKEN_VOLUME_NAME, mountPath: TOKEN_MOUNT_PATH, readOnly: true }],
          ),
        );
      }
    });
  }

  if (injected && !names(at(pod, 'spec', 'volumes')).has(TOKEN_VOLUME_NAME)) {
    patch.push(
      ...appendItems(
        pod,
        ['spec', 'volumes'],
        [
          {
            name: TOKEN_VOLUME_NAME,
            projected: {
              sources: [
                {
                  serviceAccountToken: {
                    path: TOKEN_FILE_NAME,
                    audience: TOKEN_AUDIENCE,
                    expirationSeconds,
                  },
                },
              ],
            },
          },
        ],
      ),
    );
  }
  return { patch, warnings };
}
