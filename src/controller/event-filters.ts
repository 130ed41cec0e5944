// Which watch events of an access resource call for which reconciles. Pure, so the rules that
// keep the controller's cost down are tested by table rather than measured by luck:
// - a status-only update (most of them are our own status writes) reconciles nothing, as with
//   controller-runtime's GenerationChangedPredicate; a spec change bumps metadata.generation, and
//   so does the start of a deletion;
// - other resources are re-queued only when something their admission verdict or shared state
//   depends on changed: the ServiceAccount, the identity, deletion, or the role names.
import type { Binding } from '../api/binding-index.ts';
import { ConditionType, Reason } from '../api/constants.ts';
import { sameIdentityId } from '../azure/identity-id.ts';
import type { RoleClaim } from './database-role-index.ts';

/**
 * Whether the resource itself needs a reconcile after an add/update from `before` to `after`.
 * Besides a spec change and the start of a deletion: an object re-created under the same name (a
 * new uid, maybe at the same generation), and our finalizer removed by someone else, which must be
 * put back before a deletion can skip the clean-up.
 */
export function needsReconcile(
  before: Binding | undefined,
  after: Binding | undefined,
  hasFinalizer = true,
): boolean {
  if (!before || !after) return true;
  if (before.uid !== after.uid) return true;
  if (!hasFinalizer && !after.deleting) return true;
  return before.generation !== after.generation || before.deleting !== after.deleting;
}

/** Whether other resources' admission verdicts may depend on what changed. */
export function relationsChanged(
  before: { binding?: Binding | undefined; claim?: RoleClaim | undefined },
  after: { binding?: Binding | undefined; claim?: RoleClaim | undefined },
): boolean {
  const a = before.binding;
  const b = after.binding;
  if (!a || !b) return true;
  return (
    a.serviceAccountName !== b.serviceAccountName ||
    a.identityResourceId.toLowerCase() !== b.identityResourceId.toLowerCase() ||
    a.deleting !== b.deleting ||
    JSON.stringify(before.claim) !== JSON.stringify(after.claim)
  );
}

/**
 * Whether a FIC deleted from `identityResourceId` by the operator may let this resource proceed:
 * it names that identity and was refused at Azure's 20-FIC limit there. Such a resource waits for
 * its resync otherwise (10 minutes by default) while the identity has room again.
 */
export function waitsForFicRoom(
  resource:
    | {
        spec?: { identity?: { resourceId?: string } };
        status?: { conditions?: ReadonlyArray<{ type: string; reason?: string }> };
      }
    | undefined,
  identityResourceId: string,
): boolean {
  const named = resource?.spec?.identity?.resourceId;
  if (!named || !sameIdentityId(named, identityResourceId)) return false;
  return (
    resource?.status?.conditions?.some(
      (c) =>
        c.type === ConditionType.FederatedCredentialReady &&
        c.reason === Reason.FederatedCredentialLimitReached,
    ) ?? false
  );
}
