// The shape the shared steps (identity, federated credential, ServiceAccount) need of a kind:
// any resource that binds a ServiceAccount to a managed identity, and the hand-over between them.
import type { BindingSpec, BindingStatus } from '../../api/types.ts';
import type { IdentityInfo } from '../../azure/managed-identities.ts';
import type { ManagedObject } from '../reconcile/object-reconciler.ts';

export interface BindingObject<S extends BindingStatus = BindingStatus> extends ManagedObject<S> {
  spec: BindingSpec;
}

/** What the identity step hands to the steps after it. */
export interface IdentityState {
  identity?: IdentityInfo;
}

/** The resolved identity; the steps after IdentityResolved run only once it is set. */
export function resolvedIdentity(state: IdentityState): IdentityInfo {
  if (!state.identity) throw new Error('the identity step must run before this one');
  return state.identity;
}
