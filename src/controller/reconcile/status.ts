// Building a resource's status from the outcome of each reconcile step, for any kind: a kind
// names its step conditions, Ready is their conjunction. And deciding whether the status changed,
// because a reconcile that changes nothing must not write (steady state is free). Pure.
import { ConditionType, Reason } from '../../api/constants.ts';
import type { Condition } from '../../api/types.ts';
import { conditionsEqual, readyFrom, setCondition } from '../../kube/conditions.ts';

/** The part of a status the reconcile skeleton owns; the rest are the kind's own fields. */
export interface ReconciledStatus {
  observedGeneration?: number;
  conditions?: Condition[];
}

/** The status fields a kind's steps fill in (everything but conditions and observedGeneration). */
export type StatusFields<S extends ReconciledStatus> = Omit<S, 'conditions' | 'observedGeneration'>;

export interface StepOutcome {
  /** The step's condition type. */
  type: string;
  ok: boolean;
  reason: string;
  message: string;
}

/**
 * The next status: each step's condition from its outcome (steps that did not run wait for the
 * first failure), Ready as their conjunction, the fields gathered, and the generation observed.
 */
export function nextStatus<S extends ReconciledStatus>(
  previous: S | undefined,
  stepTypes: readonly string[],
  outcomes: readonly StepOutcome[],
  fields: Partial<StatusFields<S>>,
  generation: number,
  now: Date,
): S {
  let conditions: Condition[] = previous?.conditions ?? [];
  const failed = outcomes.find((outcome) => !outcome.ok);
  for (const type of stepTypes) {
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
  conditions = setCondition(conditions, readyFrom(conditions, stepTypes), generation, now);
  return { ...previous, ...fields, conditions, observedGeneration: generation } as S;
}

/** A status whose admission checks refused the resource: Ready=False with the reason, steps waiting. */
export function refusedStatus<S extends ReconciledStatus>(
  previous: S | undefined,
  stepTypes: readonly string[],
  refusal: { reason: string; message: string },
  fields: Partial<StatusFields<S>>,
  generation: number,
  now: Date,
): S {
  let conditions: Condition[] = previous?.conditions ?? [];
  for (const type of stepTypes) {
    conditions = setCondition(
      conditions,
      { type, status: 'Unknown', reason: Reason.Waiting, message: `not started: ${refusal.reason}` },
      generation,
      now,
    );
  }
  return failedStatus({ ...previous, conditions } as S, refusal, fields, generation, now);
}

/** A status with Ready=False for a failure outside any step; the step conditions are kept. */
export function failedStatus<S extends ReconciledStatus>(
  previous: S | undefined,
  failure: { reason: string; message: string },
  fields: Partial<StatusFields<S>>,
  generation: number,
  now: Date,
): S {
  const conditions = setCondition(
    previous?.conditions ?? [],
    { type: ConditionType.Ready, status: 'False', ...failure },
    generation,
    now,
  );
  return { ...previous, ...fields, conditions, observedGeneration: generation } as S;
}

/** The previous status with only `fields` changed: a checkpoint, conditions untouched. */
export function withFields<S extends ReconciledStatus>(
  previous: S | undefined,
  fields: Partial<StatusFields<S>>,
): S {
  return { ...previous, ...fields } as S;
}

/** JSON with object keys sorted, so two equal values print the same. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .filter(([, inner]) => inner !== undefined)
            .sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}

/** Whether writing `next` would change anything but condition timestamps. */
export function statusChanged<S extends ReconciledStatus>(previous: S | undefined, next: S): boolean {
  const { conditions: a, ...restA } = previous ?? ({} as S);
  const { conditions: b, ...restB } = next;
  return !conditionsEqual(a ?? [], b ?? []) || stableJson(restA) !== stableJson(restB);
}

/**
 * The JSON merge patch (RFC 7386) that turns `previous` into `next`: changed and new members as
 * they are, members `next` no longer has as null. A status sent whole as a merge patch would keep
 * every member it omits (an emptied `applied`, a FIC no longer stale), so removals must be spelt
 * out. Arrays are replaced whole, as merge patch does.
 */
export function mergePatchBetween(previous: unknown, next: unknown): unknown {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(previous) || !isObject(next)) return next;
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(previous)) {
    if (next[key] === undefined && previous[key] !== undefined) patch[key] = null;
  }
  for (const [key, value] of Object.entries(next)) {
    if (value === undefined) continue;
    if (stableJson(previous[key]) === stableJson(value)) continue;
    patch[key] = isObject(previous[key]) && isObject(value) ? mergePatchBetween(previous[key], value) : value;
  }
  return patch;
}
