// The ServiceAccount mutation: in an opted-in namespace, a service account that an
// EntraDatabaseAccess names (or any, when the namespace has a default client ID) gets the
// workload-identity client-id and tenant-id annotations.

import { WI_CLIENT_ID_ANNOTATION, WI_TENANT_ID_ANNOTATION } from '../../api/constants.ts';
import { addMapEntries, annotation, at, nonBlank } from './plain.ts';
import type { ServiceAccountPolicyInput, ServiceAccountPolicyResult } from './types.ts';

/**
 * The client ID wanted is the binding's, else the namespace default; the tenant ID the binding's,
 * else the operator's --tenant-id. A client-id the user set to another value is left alone and
 * reported (`conflict` and a warning), and then nothing else is touched either: a tenant-id added
 * next to someone else's client ID could be wrong. A tenant-id the user set is never changed, and
 * an empty tenant ID is never written. A blank client-id annotation counts as unset and is filled.
 */
export function mutateServiceAccount(input: ServiceAccountPolicyInput): ServiceAccountPolicyResult {
  const { serviceAccount, namespace, binding } = input;
  if (!namespace.optedIn) return { patch: [], warnings: [] };
  const bindingClientId = nonBlank(binding?.clientId);
  const wanted = bindingClientId ?? namespace.defaultClientId;
  if (wanted === undefined) return { patch: [], warnings: [] };
  const tenant =
    (bindingClientId !== undefined ? nonBlank(binding?.tenantId) : undefined) ?? nonBlank(input.tenantId);

  const existing = nonBlank(annotation(serviceAccount, WI_CLIENT_ID_ANNOTATION));
  if (existing !== undefined && existing !== wanted) {
    const name = nonBlank(at(serviceAccount, 'metadata', 'name')) ?? '';
    const from =
      binding !== undefined && bindingClientId !== undefined
        ? `EntraDatabaseAccess ${binding.source}`
        : `namespace "${namespace.name}" default`;
    return {
      patch: [],
      warnings: [
        `service account "${name}" has ${WI_CLIENT_ID_ANNOTATION}=${existing} set by hand, but ${from} wants ${wanted}; left unchanged (remove the annotation to let entra-access set it)`,
      ],
      conflict: { existing, wanted },
    };
  }

  const entries: [string, string][] = [];
  if (existing === undefined) entries.push([WI_CLIENT_ID_ANNOTATION, wanted]);
  if (tenant !== undefined && nonBlank(annotation(serviceAccount, WI_TENANT_ID_ANNOTATION)) === undefined) {
    entries.push([WI_TENANT_ID_ANNOTATION, tenant]);
  }
  return { patch: addMapEntries(serviceAccount, ['metadata', 'annotations'], entries), warnings: [] };
}
