// The DatabaseRoleReady message for grants on objects that do not exist (planGrants' `missing`):
// each object, and what to do about it. Pure.
import { describeMissing, type MissingObject } from '../../postgres/privilege-set.ts';

function missingAdvice(missing: MissingObject): string {
  switch (missing.kind) {
    case 'group':
      return `${describeMissing(missing)}: create it, or remove it from spec.memberOf`;
    case 'role':
      return `${describeMissing(missing)}: it is created by the controller; this should resolve on the next reconcile`;
    case 'schema':
      return `${describeMissing(missing)}: create schema "${missing.name}" in database "${missing.database}", or remove it from spec.grants`;
    case 'table':
      return `${describeMissing(missing)}: create it (the app's migrations may do so later), or remove it from spec.grants`;
  }
}

export function missingObjectsMessage(role: string, missing: readonly MissingObject[]): string {
  return (
    `${missing.map(missingAdvice).join('; ')}. Role ${role} has the other grants; ` +
    'the controller retries and grants the rest once it exists'
  );
}
