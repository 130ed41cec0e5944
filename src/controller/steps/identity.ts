// Step IdentityResolved (docs/design.md §5.2): the managed identity's client, principal and tenant
// IDs from ARM; and, now that they are known, the rule that no resource ever binds the operator's
// own identity (an allow-list may happen to cover it).
import { ConditionType, Reason } from '../../api/constants.ts';
import type { BindingStatus } from '../../api/types.ts';
import { IdentityNotFound } from '../../azure/arm-errors.ts';
import type { ManagedIdentities } from '../../azure/managed-identities.ts';
import { type OperatorIdentity, operatorIdentityRefusal } from '../guards/binding-rules.ts';
import type { Step } from '../reconcile/object-reconciler.ts';
import type { BindingObject, IdentityState } from './binding-object.ts';

export interface IdentityStepDeps {
  azure: Pick<ManagedIdentities, 'getIdentity'>;
  /** The operator's own managed identity, which no resource may ever bind. */
  operator: OperatorIdentity;
}

export function identityStep<
  O extends BindingObject<S>,
  S extends BindingStatus,
  State extends IdentityState,
>(deps: IdentityStepDeps): Step<O, S, State> {
  return {
    condition: ConditionType.IdentityResolved,
    system: 'azure',
    async run({ object, state }) {
      const resourceId = object.spec.identity.resourceId;
      let identity: Awaited<ReturnType<IdentityStepDeps['azure']['getIdentity']>>;
      try {
        identity = await deps.azure.getIdentity(resourceId);
      } catch (error) {
        if (!(error instanceof IdentityNotFound)) throw error;
        return {
          ok: false,
          reason: Reason.IdentityNotFound,
          message: `managed identity ${resourceId} was not found (or the operator may not read it): check spec.identity.resourceId`,
          requeueAfterMs: 60_000,
        };
      }
      const refusal = operatorIdentityRefusal(resourceId, identity, deps.operator);
      if (refusal) return { refused: refusal };
      // Handed to the later steps; status.identity is written by the ServiceAccount step once the
      // ServiceAccount carries it, so the status keeps naming the identity in force until then.
      state.identity = identity;
      return { ok: true, reason: Reason.Resolved, message: `client ID ${identity.clientId}` };
    },
  };
}
