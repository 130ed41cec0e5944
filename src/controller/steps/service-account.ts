// Step ServiceAccountReady (docs/design.md §5.2): the ServiceAccount exists and carries the
// identity's client-id and tenant-id annotations. A client-id someone else set by hand is never
// overwritten: it is reported, and left.
import * as k8s from '@kubernetes/client-node';
import {
  ConditionType,
  Reason,
  WI_CLIENT_ID_ANNOTATION,
  WI_TENANT_ID_ANNOTATION,
} from '../../api/constants.ts';
import type { BindingStatus, Condition } from '../../api/types.ts';
import { statusOf } from '../../kube/client.ts';
import { getCondition } from '../../kube/conditions.ts';
import type { Step } from '../reconcile/object-reconciler.ts';
import { type BindingObject, type IdentityState, resolvedIdentity } from './binding-object.ts';

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

const created = (name: string) =>
  ({ ok: true, reason: Reason.Created, message: `created ServiceAccount ${name}` }) as const;

/** Whether the last ServiceAccountReady says this resource created ServiceAccount `name`. */
function createdByUs(conditions: readonly Condition[] | undefined, name: string): boolean {
  const condition = getCondition(conditions, ConditionType.ServiceAccountReady);
  return (
    condition?.status === 'True' &&
    condition.reason === Reason.Created &&
    condition.message === created(name).message
  );
}

export function serviceAccountStep<
  O extends BindingObject<S>,
  S extends BindingStatus,
  State extends IdentityState,
>(deps: { core: k8s.CoreV1Api }): Step<O, S, State> {
  return {
    condition: ConditionType.ServiceAccountReady,
    system: 'kubernetes',
    async run(context) {
      const { object, ref, state } = context;
      const identity = resolvedIdentity(state);
      // Once the ServiceAccount carries the identity, the status names it: status.identity is what
      // the webhook gives pods and what the next reconcile takes as "ours" on the ServiceAccount.
      const inForce = <R>(result: R): R => {
        context.fields.identity = {
          resourceId: object.spec.identity.resourceId,
          clientId: identity.clientId,
          principalId: identity.principalId,
          tenantId: identity.tenantId,
        };
        return result;
      };
      const { namespace } = ref;
      const name = object.spec.serviceAccountName;
      const wanted = {
        [WI_CLIENT_ID_ANNOTATION]: identity.clientId,
        [WI_TENANT_ID_ANNOTATION]: identity.tenantId,
      };
      let existing: k8s.V1ServiceAccount | undefined;
      try {
        existing = await deps.core.readNamespacedServiceAccount({ namespace, name });
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
      if (!existing) {
        await deps.core.createNamespacedServiceAccount({
          namespace,
          body: { metadata: { name, annotations: wanted } },
        });
        return inForce(created(name));
      }
      const annotations = existing.metadata?.annotations ?? {};
      const current = annotations[WI_CLIENT_ID_ANNOTATION];
      // Ours from before an identity change: ours to replace.
      const previous = object.status?.identity?.clientId;
      if (current && current !== identity.clientId && current !== previous) {
        return {
          ok: false,
          reason: Reason.ServiceAccountClientIdConflict,
          message: `ServiceAccount ${name} has ${WI_CLIENT_ID_ANNOTATION}=${current}, set by someone else; entra-access leaves it. Remove the annotation (or set it to ${identity.clientId}) to use this identity`,
        };
      }
      if (current !== identity.clientId || annotations[WI_TENANT_ID_ANNOTATION] !== identity.tenantId) {
        await deps.core.patchNamespacedServiceAccount(
          { namespace, name, body: { metadata: { annotations: wanted } } },
          mergePatch,
        );
      } else if (createdByUs(object.status?.conditions, name)) {
        // Still the one we created, untouched: the condition says so as before. Flipping it to
        // UpToDate would cost every resource one status write at its first resync.
        return inForce(created(name));
      }
      return inForce({
        ok: true,
        reason: Reason.UpToDate,
        message: `ServiceAccount ${name} carries the identity's client-id`,
      });
    },
  };
}
