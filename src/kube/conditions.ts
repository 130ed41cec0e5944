// Pure helpers for metav1.Condition lists. Two conventions matter to users and tools (kubectl
// wait, Argo CD, kstatus): lastTransitionTime moves only when a condition's status flips, and a
// reconcile that changes nothing writes no status — conditionsEqual is the "did anything change"
// test that makes the second possible.
import { ConditionType, Reason } from '../api/constants.ts';
import type { Condition } from '../api/types.ts';

export type ConditionStatus = Condition['status'];

/** A condition as a reconcile step reports it; the helpers fill in the times and generation. */
export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

type Conditions = readonly Condition[] | undefined;

/** metav1.Condition's limit on message length; the apiserver rejects a longer one. */
export const MAX_MESSAGE_LENGTH = 32768;

/**
 * metav1.Time as the apiserver stores it: RFC 3339 in whole seconds. Writing the same precision
 * it reads back keeps our own copies comparable with what comes out of a watch.
 */
export function formatConditionTime(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z');
}

export function getCondition(conditions: Conditions, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: Conditions, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

/**
 * A new list with `update` applied: an existing condition of the type is replaced in place (its
 * lastTransitionTime kept unless the status flips), a new one is appended. The input is not
 * modified.
 */
export function setCondition(
  conditions: Conditions,
  update: ConditionUpdate,
  observedGeneration: number | undefined,
  now: Date,
): Condition[] {
  const list = conditions ?? [];
  const previous = getCondition(list, update.type);
  const next: Condition = {
    type: update.type,
    status: update.status,
    ...(observedGeneration === undefined ? {} : { observedGeneration }),
    lastTransitionTime:
      previous && previous.status === update.status ? previous.lastTransitionTime : formatConditionTime(now),
    reason: update.reason,
    message: truncate(update.message),
  };
  return previous ? list.map((c) => (c === previous ? next : c)) : [...list, next];
}

/**
 * Ready as the conjunction of `requiredTypes`, in their order: False naming the first False one
 * (its reason, and its message prefixed with its type); else Unknown naming the first Unknown or
 * missing one; else True.
 */
export function readyFrom(conditions: Conditions, requiredTypes: readonly string[]): ConditionUpdate {
  // A missing condition is a step not reached yet: unknown, not failed.
  const states = requiredTypes.map(
    (type) =>
      getCondition(conditions, type) ?? {
        type,
        status: 'Unknown' as const,
        reason: Reason.Waiting,
        message: 'not checked yet',
      },
  );
  const blocking = states.find((c) => c.status === 'False') ?? states.find((c) => c.status !== 'True');
  if (blocking) {
    return {
      type: ConditionType.Ready,
      status: blocking.status,
      reason: blocking.reason,
      message: truncate(`${blocking.type}: ${blocking.message}`),
    };
  }
  return {
    type: ConditionType.Ready,
    status: 'True',
    reason: Reason.Reconciled,
    message: requiredTypes.length > 0 ? `${requiredTypes.join(', ')}: True` : 'reconciled',
  };
}

/**
 * True when the two lists say the same thing: the same types with the same status, reason,
 * message and observedGeneration, in any order. lastTransitionTime is ignored, because a list
 * rebuilt by setCondition from an unchanged one differs from it in nothing else.
 */
export function conditionsEqual(a: Conditions, b: Conditions): boolean {
  const left = a ?? [];
  const right = b ?? [];
  if (left.length !== right.length) return false;
  return left.every((l) => {
    const r = getCondition(right, l.type);
    return (
      r !== undefined &&
      r.status === l.status &&
      r.reason === l.reason &&
      r.message === l.message &&
      r.observedGeneration === l.observedGeneration
    );
  });
}

function truncate(message: string): string {
  return message.length <= MAX_MESSAGE_LENGTH ? message : `${message.slice(0, MAX_MESSAGE_LENGTH - 1)}…`;
}
