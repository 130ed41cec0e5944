// Building an EntraDatabaseAccess status from the outcome of each step, and deciding whether it
// changed: a reconcile that changes nothing must not write (steady state is free). Pure.
import { ConditionType, Reason } from '../api/constants.ts';
import type { Condition, EntraDatabaseAccessStatus } from '../api/types.ts';
import { conditionsEqual, readyFrom, setCondition } from '../kube/conditions.ts';
import { describeMissing, type MissingObject } from '../postgres/privilege-set.ts';

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

/** A failure as a condition shows it: the reason and a message saying what to change. */
export interface StepFailure {
  reason: string;
  message: string;
}

const KNOWN_REASONS = new Set<string>(Object.values(Reason));

/** Whether `error` or an error in its `cause` chain matches. */
function inChain(error: unknown, test: (e: object) => boolean): boolean {
  const seen = new Set<unknown>();
  let current = error;
  while (current !== null && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    if (test(current)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** The first `reason` (a Reason) on `error` or in its `cause` chain: the thrower's own diagnosis. */
function reasonOf(error: unknown): { reason: string; error: Error } | undefined {
  const seen = new Set<unknown>();
  let current = error;
  while (current !== null && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const reason = (current as { reason?: unknown }).reason;
    if (typeof reason === 'string' && KNOWN_REASONS.has(reason)) return { reason, error: current as Error };
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Secrets never go into a condition or an Event: bearer tokens, JWTs (an Entra access token is
 * one) and `password=` pairs are masked, whatever library wrote the message.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]')
    .replace(/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[redacted token]')
    .replace(
      /\b(password|access_token|client_assertion)(["']?\s*[=:]\s*["']?)[^\s"'&,;]+/gi,
      '$1$2[redacted]',
    );
}

/** What a Kubernetes API error says, without the response headers and body dump of its message. */
function kubernetesMessage(error: Error): string {
  const e = error as { code?: unknown; body?: unknown };
  if (typeof e.code !== 'number') return error.message;
  let body = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      // not JSON: fall back to the message
    }
  }
  const text = (body as { message?: unknown } | undefined)?.message;
  return `${e.code}: ${typeof text === 'string' ? text : (error.message.split('\n')[1] ?? error.message)}`;
}

/**
 * How an error thrown out of a reconcile step shows on that step's condition (DESIGN.md §2: every
 * failure ends in a condition with a reason and a message). The thrower's own reason wins (the
 * Azure errors carry AzureRequestFailed); else the step decides: Azure steps → AzureRequestFailed,
 * the ServiceAccount → KubernetesRequestFailed, the database → DatabaseRequestFailed. Undefined for
 * what is no failure: a FIC write waiting for its turn under the operator's own write pacing.
 * Messages are stable across retries (no "retrying in Ns"), so a repeated failure writes no status
 * and sends no second Event.
 */
/** A FIC write waiting for its turn under the operator's own write pacing: no failure at all. */
export function isPacedWrite(error: unknown): boolean {
  return inChain(error, (e) => (e as { code?: unknown }).code === 'ClientPacing');
}

export function failureOf(error: unknown, step: StepOutcome['type'] | undefined): StepFailure | undefined {
  if (isPacedWrite(error)) return undefined;
  const own = reasonOf(error);
  const cause = own?.error ?? (error instanceof Error ? error : new Error(String(error)));
  let reason: string;
  let message: string;
  if (own) {
    reason = own.reason;
    message = cause.message;
  } else if (step === 'IdentityResolved' || step === 'FederatedCredentialReady') {
    reason = Reason.AzureRequestFailed;
    message = `Azure request failed: ${cause.message}`;
  } else if (step === 'ServiceAccountReady') {
    reason = Reason.KubernetesRequestFailed;
    message = `Kubernetes request failed: ${kubernetesMessage(cause)}: check the operator's RBAC and the namespace`;
  } else if (step === 'DatabaseRoleReady') {
    reason = Reason.DatabaseRequestFailed;
    message = `PostgreSQL: ${cause.message}`;
  } else {
    // Before the first step only the Kubernetes API is called (the finalizer, the caches).
    reason = Reason.KubernetesRequestFailed;
    message = `Kubernetes request failed: ${kubernetesMessage(cause)}`;
  }
  message = message.replace(/;?\s*retrying in \d+\s*s\.?$/i, '');
  return { reason, message: redactSecrets(message) };
}

/** A status with Ready=False for a failure outside any step; the step conditions are kept. */
export function failedStatus(
  previous: EntraDatabaseAccessStatus | undefined,
  failure: StepFailure,
  generation: number,
  now: Date,
): EntraDatabaseAccessStatus {
  const conditions = setCondition(
    previous?.conditions ?? [],
    { type: ConditionType.Ready, status: 'False', ...failure },
    generation,
    now,
  );
  return { ...previous, conditions, observedGeneration: generation };
}

/** What to do about one object the grants name that does not exist. */
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

/** The DatabaseRoleReady message for grants on objects that do not exist (planGrants' `missing`). */
export function missingObjectsMessage(role: string, missing: readonly MissingObject[]): string {
  return (
    `${missing.map(missingAdvice).join('; ')}. Role ${role} has the other grants; ` +
    'the controller retries and grants the rest once it exists'
  );
}
