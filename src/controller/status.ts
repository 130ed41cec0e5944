// Building an EntraDatabaseAccess status from the outcome of each step, and deciding whether it
// changed: a reconcile that changes nothing must not write (steady state is free). Pure.
import { ConditionType, Reason } from '../api/constants.ts';
import type { Condition, EntraDatabaseAccessStatus } from '../api/types.ts';
import { conditionsEqual, readyFrom, setCondition } from '../kube/conditions.ts';

export const STEP_CONDITIONS = [
  ConditionType.IdentityResolved,
  ConditionType.FederatedCredentialReady,
  ConditionType.ServiceAccountReady,
  ConditionType.DatabaseRoleReady,
] as const;

export interface StepOutcome {
  type: (typeof STEP_CONDITIONS)[number];
  ok: boolean;
  reason: string;
  message: string;
}

/**
 * The next status: each step's condition from its outcome (steps that did not run wait for the
 * first failure), Ready as their conjunction, and the observed fields.
 */
export function nextStatus(
  previous: EntraDatabaseAccessStatus | undefined,
  outcomes: StepOutcome[],
  fields: Omit<EntraDatabaseAccessStatus, 'conditions' | 'observedGeneration'>,
  generation: number,
  now: Date,
): EntraDatabaseAccessStatus {
  let conditions: Condition[] = previous?.conditions ?? [];
  const failed = outcomes.find((outcome) => !outcome.ok);
  for (const type of STEP_CONDITIONS) {
    const outcome = outcomes.find((o) => o.type === type);
    const update = outcome
      ? {
          type,
          status: outcome.ok ? ('True' as const) : ('False' as const),
          reason: outcome.reason,
          message: outcome.message,
        }
      : {
          type,
          status: 'Unknown' as const,
          reason: Reason.Waiting,
          message: failed ? `waiting for ${failed.type}: ${failed.reason}` : 'not checked yet',
        };
    conditions = setCondition(conditions, update, generation, now);
  }
  conditions = setCondition(conditions, readyFrom(conditions, STEP_CONDITIONS), generation, now);
  return { ...previous, ...fields, conditions, observedGeneration: generation };
}

/** A status whose admission checks failed: Ready=False with the guard's reason, steps waiting. */
export function refusedStatus(
  previous: EntraDatabaseAccessStatus | undefined,
  reason: string,
  message: string,
  generation: number,
  now: Date,
): EntraDatabaseAccessStatus {
  let conditions: Condition[] = previous?.conditions ?? [];
  for (const type of STEP_CONDITIONS) {
    conditions = setCondition(
      conditions,
      { type, status: 'Unknown', reason: Reason.Waiting, message: `not started: ${reason}` },
      generation,
      now,
    );
  }
  conditions = setCondition(
    conditions,
    { type: ConditionType.Ready, status: 'False', reason, message },
    generation,
    now,
  );
  return { ...previous, conditions, observedGeneration: generation };
}

function stable(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}

/** Whether writing `next` would change anything but condition timestamps. */
export function statusChanged(
  previous: EntraDatabaseAccessStatus | undefined,
  next: EntraDatabaseAccessStatus,
): boolean {
  const { conditions: a, ...restA } = previous ?? {};
  const { conditions: b, ...restB } = next;
  return !conditionsEqual(a ?? [], b ?? []) || stable(restA) !== stable(restB);
}
