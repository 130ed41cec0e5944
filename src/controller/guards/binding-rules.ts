// The admission rules of every kind that binds a ServiceAccount to a managed identity
// (docs/design.md §5.3, the kind-neutral part): the namespace opted in, the identity on its
// allow-list, the ServiceAccount not already bound to another identity, and never the operator's
// own identity. These are tenant-isolation rules: without them a tenant could federate its
// ServiceAccount to any identity the operator can write. Pure.
import type * as k8s from '@kubernetes/client-node';
import type { Binding, BindingIndex } from '../../api/binding-index.ts';
import { objectKey } from '../../api/binding-index.ts';
import {
  ALLOWED_IDENTITIES_ANNOTATION,
  NAMESPACE_OPT_IN_ANNOTATION,
  OPT_IN_VALUE,
  Reason,
} from '../../api/constants.ts';
import { identityAllowed } from '../../azure/identity-id.ts';
import type { Refusal, Rule } from './chain.ts';

/** What the rules read of a Namespace. */
export interface NamespaceView {
  name: string;
  optedIn: boolean;
  labels: Record<string, string>;
  /** The raw `entra-access.io/allowed-identities` annotation. */
  allowedIdentities?: string;
}

export function namespaceView(namespace: k8s.V1Namespace | undefined): NamespaceView | undefined {
  if (!namespace?.metadata?.name) return undefined;
  const annotations = namespace.metadata.annotations ?? {};
  const view: NamespaceView = {
    name: namespace.metadata.name,
    optedIn: annotations[NAMESPACE_OPT_IN_ANNOTATION] === OPT_IN_VALUE,
    labels: namespace.metadata.labels ?? {},
  };
  const allowed = annotations[ALLOWED_IDENTITIES_ANNOTATION];
  if (allowed !== undefined) view.allowedIdentities = allowed;
  return view;
}

export interface BindingRuleInput {
  binding: Binding;
  namespace: NamespaceView | undefined;
  bindings: BindingIndex;
}

export const namespaceOptedIn: Rule<BindingRuleInput> = ({ binding, namespace }) =>
  namespace?.optedIn
    ? undefined
    : {
        reason: Reason.NamespaceNotOptedIn,
        message: `namespace ${binding.namespace} is not opted in to entra-access: a platform admin must annotate it with entra-access.io/workload-identity=enabled`,
      };

export const identityAllowedInNamespace: Rule<BindingRuleInput> = ({ binding, namespace }) =>
  identityAllowed(binding.identityResourceId, namespace?.allowedIdentities ?? '')
    ? undefined
    : {
        reason: Reason.IdentityNotAllowed,
        message: `identity ${binding.identityResourceId} is not allowed in namespace ${binding.namespace}: a platform admin must add it (or a resource-group or subscription prefix ending in /*) to the namespace annotation entra-access.io/allowed-identities`,
      };

/** A ServiceAccount has one identity: the first resource to bind it keeps it, of whatever kind. */
export const serviceAccountUnclaimed: Rule<BindingRuleInput> = ({ binding, bindings }) => {
  const earlier = bindings.earlierConflict(binding);
  if (!earlier) return undefined;
  return {
    reason: Reason.ServiceAccountConflict,
    message: `service account ${binding.namespace}/${binding.serviceAccountName} is already bound to identity ${earlier.identityResourceId} by ${earlier.kind} ${objectKey(earlier)}: a service account has one identity; use another serviceAccountName or the same identity`,
  };
};

/** The operator's own managed identity, as its pod knows it (AZURE_CLIENT_ID) or ARM reports it. */
export interface OperatorIdentity {
  clientId?: string;
  principalId?: string;
}

/**
 * The rule that needs the identity resolved (after step 2, before any FIC is written): no resource
 * may ever bind the operator's own identity. That identity can write FICs on every app identity
 * and is the Entra admin of the servers, so a tenant federated to it would own them all; only an
 * allow-list that covers it (a resource-group prefix that happens to include it) lets a resource
 * get this far.
 */
export function operatorIdentityRefusal(
  resourceId: string,
  identity: { clientId: string; principalId: string },
  operator: OperatorIdentity,
): Refusal | undefined {
  const same = (a: string | undefined, b: string) =>
    a !== undefined && a !== '' && a.toLowerCase() === b.toLowerCase();
  if (!same(operator.clientId, identity.clientId) && !same(operator.principalId, identity.principalId))
    return undefined;
  return {
    reason: Reason.IdentityNotAllowed,
    message: `identity ${resourceId} is entra-access's own identity and can never be bound to a service account: use an app identity, and ask a platform admin to keep the operator's identity out of the namespace's entra-access.io/allowed-identities`,
  };
}
