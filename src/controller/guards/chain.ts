// Admission checks as an ordered chain of pure rules, each answering "refused, and why" or
// nothing; the first refusal wins, so the order of a kind's chain is the order in which a user
// meets its problems. A kind is a list of rules, shared ones first (binding-rules.ts), then its
// own (database-rules.ts), so no rule is written twice.
import type { Reason } from '../../api/constants.ts';

/** Why a resource may not proceed, and what to change (the message goes on its Ready condition). */
export interface Refusal {
  reason: Reason;
  message: string;
}

export type Rule<Input> = (input: Input) => Refusal | undefined;

export function firstRefusal<Input>(rules: ReadonlyArray<Rule<Input>>, input: Input): Refusal | undefined {
  for (const rule of rules) {
    const refusal = rule(input);
    if (refusal) return refusal;
  }
  return undefined;
}
