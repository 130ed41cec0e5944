// Step FederatedCredentialReady (docs/design.md §5.2): the identity trusts the ServiceAccount's
// tokens through one FIC, and every FIC this resource made for an earlier identity or
// ServiceAccount is deleted (unless another resource, of any kind, still uses it).
//
// Order matters, because a write on an identity waits for its paced slot (Azure allows 0.25/s per
// identity), may be handed back to the caller, and the process may die; meanwhile the resource can
// change or be deleted: first the FIC in force is ensured, then the new one and every stale one
// are put on record in the status, and only then are the stale ones deleted. Whatever happens in
// between, the status names every FIC that may exist, and the next reconcile or the deletion
// removes it. Before this order, a stale FIC whose delete was handed back was forgotten by the
// next change.

import type { BindingIndex } from '../../api/binding-index.ts';
import { ConditionType, Reason, TOKEN_AUDIENCE } from '../../api/constants.ts';
import type { BindingStatus, FederatedCredentialStatus, StaleFederatedCredential } from '../../api/types.ts';
import {
  AzureRetryableError,
  FederatedCredentialLimit,
  FederatedCredentialRejected,
  FederatedCredentialsUnsupported,
} from '../../azure/arm-errors.ts';
import { ficName, ficSubject } from '../../azure/fic-name.ts';
import { identityIdKey, sameIdentityId } from '../../azure/identity-id.ts';
import type { ManagedIdentities } from '../../azure/managed-identities.ts';
import type { Step } from '../reconcile/object-reconciler.ts';
import type { StatusFields } from '../reconcile/status.ts';
import { RetryAfterError } from '../workqueue.ts';
import { type BindingObject, type IdentityState, resolvedIdentity } from './binding-object.ts';

export interface FederatedCredentialStepDeps {
  /** The kind whose resources run the step, as the binding index names it. */
  kind: string;
  azure: Pick<ManagedIdentities, 'ensureFederatedCredential' | 'deleteFederatedCredential'>;
  bindings: BindingIndex;
  /** Used in FIC names, so several clusters can share one identity. */
  clusterName: string;
  /** The cluster's OIDC issuer: the issuer of every FIC. */
  issuer: string;
}

/** `[namespace, sa]` of a FIC subject `system:serviceaccount:<ns>:<sa>`; undefined for anything else. */
export function subjectServiceAccount(subject: string | undefined): [string, string] | undefined {
  const parts = subject?.split(':') ?? [];
  return parts.length === 4 && parts[0] === 'system' && parts[1] === 'serviceaccount' && parts[2] && parts[3]
    ? [parts[2], parts[3]]
    : undefined;
}

/**
 * Every FIC a status records: the one in force (on the identity it names, or for statuses written
 * before that field existed, the status's identity) and the stale ones, each once.
 */
export function recordedCredentials(status: BindingStatus | undefined): StaleFederatedCredential[] {
  const found = new Map<string, StaleFederatedCredential>();
  const add = (credential: StaleFederatedCredential) => {
    const key = `${identityIdKey(credential.identityResourceId)}/${credential.name.toLowerCase()}`;
    if (!found.has(key)) found.set(key, credential);
  };
  const current = status?.federatedCredential;
  const currentIdentity = current?.identityResourceId || status?.identity?.resourceId;
  if (current?.name && currentIdentity) {
    add({
      identityResourceId: currentIdentity,
      name: current.name,
      ...(current.subject ? { subject: current.subject } : {}),
    });
  }
  for (const stale of status?.staleFederatedCredentials ?? []) add(stale);
  return [...found.values()];
}

/** Whether the record names the FIC `current` (same identity, same name). */
function isCredential(record: StaleFederatedCredential, current: FederatedCredentialStatus): boolean {
  return (
    sameIdentityId(record.identityResourceId, current.identityResourceId) &&
    record.name.toLowerCase() === (current.name ?? '').toLowerCase()
  );
}

export function federatedCredentialStep<
  O extends BindingObject<S>,
  S extends BindingStatus,
  State extends IdentityState,
>(deps: FederatedCredentialStepDeps): Step<O, S, State> {
  return {
    condition: ConditionType.FederatedCredentialReady,
    system: 'azure',
    async run({ object, ref, state, fields, checkpoint }) {
      resolvedIdentity(state);
      const resourceId = object.spec.identity.resourceId;
      const serviceAccount = object.spec.serviceAccountName;
      const subject = ficSubject(ref.namespace, serviceAccount);
      // What was made for another identity or ServiceAccount: no longer this resource's to keep.
      const stale = recordedCredentials(object.status).filter(
        (record) => !(sameIdentityId(record.identityResourceId, resourceId) && record.subject === subject),
      );

      let fic: Awaited<ReturnType<FederatedCredentialStepDeps['azure']['ensureFederatedCredential']>>;
      try {
        fic = await deps.azure.ensureFederatedCredential(resourceId, {
          name: ficName(deps.clusterName, ref.namespace, serviceAccount),
          issuer: deps.issuer,
          subject,
          audience: TOKEN_AUDIENCE,
        });
      } catch (error) {
        if (error instanceof FederatedCredentialsUnsupported) {
          // Not a transient failure: the identity will not gain FICs where it is. The resource
          // comes back at the next resync (or when its spec names another identity).
          return {
            ok: false,
            reason: Reason.FederatedCredentialsUnsupported,
            message:
              `the region of identity ${resourceId} does not support federated identity credentials ` +
              '(Azure answered 405): use a user-assigned identity created in a supported region (it may ' +
              'be in another region than the cluster) and set spec.identity.resourceId to it',
          };
        }
        if (error instanceof FederatedCredentialLimit || error instanceof FederatedCredentialRejected) {
          const limit = error instanceof FederatedCredentialLimit;
          return {
            ok: false,
            reason: limit ? Reason.FederatedCredentialLimitReached : Reason.FederatedCredentialRejected,
            message: limit
              ? `identity ${resourceId} already has Azure's maximum of 20 federated credentials: use another identity or remove unused credentials`
              : `Azure refused the federated credential: ${error.message}`,
          };
        }
        if (error instanceof AzureRetryableError)
          throw new RetryAfterError(error.message, error.retryAfterMs ?? 5000, { cause: error });
        throw error;
      }

      const current: FederatedCredentialStatus = {
        name: fic.name,
        issuer: deps.issuer,
        subject,
        identityResourceId: resourceId,
      };
      let remaining = stale.filter((record) => !isCredential(record, current));
      fields.federatedCredential = current;
      fields.staleFederatedCredentials = remaining.length > 0 ? remaining : undefined;
      if (remaining.length > 0) {
        // On record before any delete: a delete can be handed back to the queue.
        await checkpoint({ federatedCredential: current, staleFederatedCredentials: remaining } as Partial<
          StatusFields<S>
        >);
      }
      for (const record of [...remaining]) {
        const [namespace, name] = subjectServiceAccount(record.subject) ?? [ref.namespace, serviceAccount];
        const used = deps.bindings.credentialInUse(record.identityResourceId, namespace, name, {
          kind: deps.kind,
          namespace: ref.namespace,
          name: ref.name,
        });
        // Left behind, it would keep trusting the old ServiceAccount and count against the
        // identity's 20-FIC limit.
        if (!used) await deps.azure.deleteFederatedCredential(record.identityResourceId, record.name);
        remaining = remaining.filter((other) => other !== record);
        fields.staleFederatedCredentials = remaining.length > 0 ? remaining : undefined;
      }
      return {
        ok: true,
        reason: fic.action === 'adopted' ? Reason.Adopted : Reason.UpToDate,
        message: `federated credential ${fic.name} trusts ${subject}`,
      };
    },
  };
}
