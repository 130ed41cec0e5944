// Deciding what, if anything, to write so that an identity trusts one (issuer, subject, audience),
// from the FICs it already has. Pure: this is the part that keeps steady state free of ARM writes.
//
// Azure keys a FIC's trust on issuer+subject (unique per identity) and names are just handles, so
// the match is on issuer+subject first, whatever the name: a FIC someone made by hand, or an
// earlier version of this operator made under another name, is adopted rather than duplicated
// (a duplicate would be refused anyway with 400 "Issuer and subject combination already exists").

/** At most 20 FICs per identity (Azure's documented limit). */
export const MAX_FICS_PER_IDENTITY = 20;

export interface DesiredFic {
  name: string;
  issuer: string;
  subject: string;
  audience: string;
}

export interface ExistingFic {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
}

export type FicPlan =
  /** Nothing to write; `name` is the FIC that already grants the trust (ours or adopted). */
  | { write: false; action: 'unchanged' | 'adopted'; name: string }
  /** PUT `name` with the desired content. */
  | { write: true; action: 'created' | 'updated'; name: string }
  /** A create is needed but the identity is full; writing would only earn a 400. */
  | { write: false; action: 'limit'; count: number };

function sameName(a: string, b: string): boolean {
  // ARM resource names are case-insensitive.
  return a.toLowerCase() === b.toLowerCase();
}

function audienceMatches(fic: ExistingFic, audience: string): boolean {
  return fic.audiences.length === 1 && fic.audiences[0] === audience;
}

export function planFederatedCredential(
  existing: readonly ExistingFic[],
  desired: DesiredFic,
  maxPerIdentity = MAX_FICS_PER_IDENTITY,
): FicPlan {
  // Issuer and subject are compared exactly: Entra matches the token's `iss` and `sub` exactly.
  const trusting = existing.find((f) => f.issuer === desired.issuer && f.subject === desired.subject);
  if (trusting) {
    if (!audienceMatches(trusting, desired.audience)) {
      // Update in place under its own name: a PUT under our name would collide on issuer+subject.
      return { write: true, action: 'updated', name: trusting.name };
    }
    return {
      write: false,
      action: sameName(trusting.name, desired.name) ? 'unchanged' : 'adopted',
      name: trusting.name,
    };
  }
  // Our name holding other content (e.g. the cluster's issuer changed): overwrite it.
  const named = existing.find((f) => sameName(f.name, desired.name));
  if (named) return { write: true, action: 'updated', name: named.name };
  if (existing.length >= maxPerIdentity) return { write: false, action: 'limit', count: existing.length };
  return { write: true, action: 'created', name: desired.name };
}
