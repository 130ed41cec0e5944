// The clean-up every binding kind shares: delete each federated credential its status records (the
// one in force and the stale ones), unless another resource, of any kind, still binds that
// ServiceAccount to that identity; or, with deletionPolicy Orphan, mark the one in force as kept.
import * as k8s from '@kubernetes/client-node';
import type { BindingIndex } from '../../api/binding-index.ts';
import { RETAINED_CREDENTIALS_ANNOTATION } from '../../api/constants.ts';
import type { ManagedIdentities } from '../../azure/managed-identities.ts';
import { statusOf } from '../../kube/client.ts';
import { credentialId } from '../federated-credential-sweeper.ts';
import type { BindingObject } from '../steps/binding-object.ts';
import { recordedCredentials, subjectServiceAccount } from '../steps/federated-credential.ts';

export async function deleteRecordedCredentials(
  object: BindingObject,
  deps: { kind: string; azure: Pick<ManagedIdentities, 'deleteFederatedCredential'>; bindings: BindingIndex },
): Promise<void> {
  const namespace = object.metadata.namespace ?? '';
  const self = { kind: deps.kind, namespace, name: object.metadata.name ?? '' };
  for (const record of recordedCredentials(object.status)) {
    const [subjectNamespace, serviceAccount] = subjectServiceAccount(record.subject) ?? [
      namespace,
      object.spec.serviceAccountName,
    ];
    if (deps.bindings.credentialInUse(record.identityResourceId, subjectNamespace, serviceAccount, self))
      continue;
    await deps.azure.deleteFederatedCredential(record.identityResourceId, record.name);
  }
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/**
 * deletionPolicy Orphan: the FIC in force stays in Azure, and its ServiceAccount says so
 * (RETAINED_CREDENTIALS_ANNOTATION), so the sweep of orphaned credentials leaves it too. A FIC
 * whose ServiceAccount is gone is not marked: nothing can use it, and the sweep may remove it.
 */
export async function markCredentialRetained(
  object: BindingObject,
  core: Pick<k8s.CoreV1Api, 'readNamespacedServiceAccount' | 'patchNamespacedServiceAccount'>,
): Promise<void> {
  const current = object.status?.federatedCredential;
  const identity = current?.identityResourceId ?? object.status?.identity?.resourceId;
  const [namespace, name] = subjectServiceAccount(current?.subject) ?? [];
  if (!current?.name || !identity || !namespace || !name) return;
  let serviceAccount: k8s.V1ServiceAccount;
  try {
    serviceAccount = await core.readNamespacedServiceAccount({ namespace, name });
  } catch (error) {
    if (statusOf(error) === 404) return;
    throw error;
  }
  const id = credentialId(identity, current.name);
  const listed = (serviceAccount.metadata?.annotations?.[RETAINED_CREDENTIALS_ANNOTATION] ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (listed.some((entry) => entry.toLowerCase() === id.toLowerCase())) return;
  await core.patchNamespacedServiceAccount(
    {
      namespace,
      name,
      body: { metadata: { annotations: { [RETAINED_CREDENTIALS_ANNOTATION]: [...listed, id].join(',') } } },
    },
    mergePatch,
  );
}
