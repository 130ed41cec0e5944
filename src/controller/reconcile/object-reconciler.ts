// The reconcile skeleton every kind runs on, in the spirit of controller-runtime's object
// reconciler with its finalizer helper, and external-secrets' single deferred status patch. It
// owns what every kind does the same way:
// - the cache read, and "object gone" at any point (a 404 on our own object ends quietly);
// - deletion: a live re-read (the cache may lag), the kind's clean-up, then a guarded finalizer
//   patch; a clean-up failure is reported on the status like any other;
// - the admission rules, before any step writes anything;
// - the steps in order, tracking which one runs, so an error thrown out of it ends on its
//   condition with a reason (failures.ts), and Ready as their conjunction;
// - ONE status write per reconcile, and only when something changed, with its Event;
// - writes paced by the operator (a FIC write waiting for its slot): handed back to the work
//   queue quietly, with what was made already on record (StepContext.checkpoint).
// A kind supplies its steps, its rules and its clean-up (kinds/*.ts).
import type * as k8s from '@kubernetes/client-node';
import { ConditionType, FINALIZER, Reason } from '../../api/constants.ts';
import { isTrue } from '../../kube/conditions.ts';
import type { EventSink, EventTarget } from '../../kube/events.ts';
import type { Logger } from '../../observability/logger.ts';
import { workerStopping } from '../../util/worker-slot.ts';
import type { Refusal } from '../guards/chain.ts';
import { type ReconcileResult, retryAfterMsOf } from '../workqueue.ts';
import { failureOf, isPacedWrite, type StepSystem } from './failures.ts';
import { ObjectApi, ObjectGone, type ObjectRef } from './object-api.ts';
import {
  failedStatus,
  mergePatchBetween,
  nextStatus,
  type ReconciledStatus,
  refusedStatus,
  type StatusFields,
  type StepOutcome,
  statusChanged,
  withFields,
} from './status.ts';

/** A custom resource the skeleton can reconcile. */
export interface ManagedObject<S extends ReconciledStatus> {
  apiVersion: string;
  kind: string;
  metadata: k8s.V1ObjectMeta;
  status?: S;
}

/** What one step found. */
export type StepResult =
  /** Done; the reconcile goes on to the next step. */
  | { ok: true; reason: string; message: string }
  /**
   * Not done, for a reason the user can act on; later steps wait. The reconcile ends here and
   * comes back after `requeueAfterMs` (default: the resync period), or, with `retryAfterMs`, it
   * ends as an error (counted, backed off from that floor).
   */
  | { ok: false; reason: string; message: string; requeueAfterMs?: number; retryAfterMs?: number }
  /** Refused like an admission rule (nothing of this step written): Ready=False, every step waiting. */
  | { refused: Refusal };

export interface StepContext<O, S extends ReconciledStatus, State> {
  /** The object as cached when the reconcile began. */
  readonly object: O;
  readonly ref: ObjectRef;
  readonly log: Logger;
  /** Status fields the steps set so far; written with the conditions at the end. */
  readonly fields: Partial<StatusFields<S>>;
  /** What earlier steps hand to later ones (the resolved identity, the server …). */
  readonly state: State;
  /**
   * Writes `fields` (only those) to the status now, conditions untouched. A step that made
   * something in Azure or a database calls it before anything that can be handed back to the
   * queue (a paced write), so the record of what exists never lags behind what exists.
   */
  checkpoint(fields: Partial<StatusFields<S>>): Promise<void>;
  /** A Warning Event besides the one for the outcome (e.g. something kept that was not dropped). */
  warn(reason: string, message: string): void;
}

export interface Step<O, S extends ReconciledStatus, State> {
  /** The condition this step sets. */
  readonly condition: string;
  /** What it talks to: names the reason of an error that brings none. */
  readonly system: StepSystem;
  run(context: StepContext<O, S, State>): Promise<StepResult>;
}

export interface CleanupContext {
  readonly log: Logger;
  /** Which system the clean-up talks to next: names the reason of an error that brings none. */
  talkingTo(system: StepSystem): void;
  warn(reason: string, message: string): void;
}

export interface KindDefinition<O extends ManagedObject<S>, S extends ReconciledStatus, State> {
  kind: string;
  plural: string;
  /** Reads the cache (with a live GET on a miss). */
  get(namespace: string, name: string): Promise<O | undefined>;
  /** The admission rules, run before any step: the first refusal, or undefined. */
  admit(object: O): Promise<Refusal | undefined>;
  steps: ReadonlyArray<Step<O, S, State>>;
  /** A fresh hand-over object for each reconcile. */
  initialState(): State;
  /** What deletion removes, by the object's deletion policy (the live object is passed). */
  cleanUp(object: O, context: CleanupContext): Promise<void>;
  /** The Normal Event's message when the object first becomes Ready. */
  readyMessage: string;
  /**
   * Status fields an older operator wrote in an older form, rewritten in the current one: they go
   * into every status write of the reconcile, whichever step it ends at.
   */
  migrateStatus?(object: O): Partial<StatusFields<S>>;
}

export interface ObjectReconcilerDeps {
  custom: k8s.CustomObjectsApi;
  events: EventSink;
  logger: Logger;
  /** The periodic resync of a healthy object. */
  resyncMs: number;
  now?: () => Date;
}

/** A failure already reported on a condition, thrown on so the work queue counts it and backs off. */
export class ReportedFailure extends Error {
  override readonly name = 'ReportedFailure';
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

export function splitKey(key: string): ObjectRef {
  const [namespace = '', name = ''] = key.split('/');
  return { namespace, name };
}

export function createObjectReconciler<O extends ManagedObject<S>, S extends ReconciledStatus, State>(
  definition: KindDefinition<O, S, State>,
  deps: ObjectReconcilerDeps,
): (key: string) => Promise<ReconcileResult> {
  const { events, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const api = new ObjectApi<O>(deps.custom, definition.plural);
  const stepTypes = definition.steps.map((step) => step.condition);

  /**
   * The resourceVersion of our last status write per key, until a reconcile of the key has seen
   * it: a key re-queued while it ran is picked up again at once, maybe before the watch delivered
   * that write, and a merge patch computed from the older cached status would drop what the write
   * recorded (a FIC on record, say). Such a reconcile reads the object live instead.
   */
  const lastWritten = new Map<string, { uid: string | undefined; resourceVersion: string | undefined }>();

  const target = (object: O, ref: ObjectRef): EventTarget => ({
    apiVersion: object.apiVersion,
    kind: definition.kind,
    name: ref.name,
    namespace: ref.namespace,
    ...(object.metadata.uid ? { uid: object.metadata.uid } : {}),
  });

  async function remove(ref: ObjectRef, cached: O, log: Logger): Promise<ReconcileResult> {
    if (!cached.metadata.finalizers?.includes(FINALIZER)) return {};
    // The cache may lag: the object may be gone already (a previous run removed the finalizer and
    // the key came round again before the cache saw the deletion), or its status may be newer than
    // the cached one (what the last reconcile recorded). Clean up from the live object.
    const live = await api.live(ref);
    if (!live?.metadata.deletionTimestamp || !live.metadata.finalizers?.includes(FINALIZER)) return {};
    let system: StepSystem | undefined;
    try {
      await definition.cleanUp(live, {
        log,
        talkingTo: (next) => {
          system = next;
        },
        warn: (reason, message) => events.warning(target(live, ref), reason, message),
      });
    } catch (error) {
      if (error instanceof ObjectGone || isPacedWrite(error) || workerStopping()) throw error;
      const failure = failureOf(error, system);
      if (failure) {
        const generation = live.metadata.generation ?? 0;
        const message = `deleting: ${failure.message}`;
        const status = failedStatus(live.status, { reason: failure.reason, message }, {}, generation, now());
        if (statusChanged(live.status, status)) {
          events.warning(target(live, ref), failure.reason, message);
          await api.patchStatus(ref, mergePatchBetween(live.status ?? {}, status));
        }
      }
      throw error;
    }
    await api.removeFinalizer(ref, live.metadata.finalizers);
    log.info('cleaned up');
    return {};
  }

  async function reconcileObject(ref: ObjectRef, object: O, log: Logger): Promise<ReconcileResult> {
    const generation = object.metadata.generation ?? 0;
    const previous = object.status;
    /** The status as last written in this reconcile: what the next write is a patch against. */
    let base: S | undefined = previous;
    const write = async (status: S): Promise<void> => {
      if (!statusChanged(base, status)) return;
      const written = await api.patchStatus(ref, mergePatchBetween(base ?? {}, status));
      base = status;
      lastWritten.set(`${ref.namespace}/${ref.name}`, {
        uid: written?.uid ?? object.metadata.uid,
        resourceVersion: written?.resourceVersion,
      });
    };
    const warn = (reason: string, message: string) => events.warning(target(object, ref), reason, message);

    const outcomes: StepOutcome[] = [];
    const fields: Partial<StatusFields<S>> = definition.migrateStatus?.(object) ?? {};
    const context: StepContext<O, S, State> = {
      object,
      ref,
      log,
      fields,
      state: definition.initialState(),
      checkpoint: async (recorded) => {
        try {
          await write(withFields(base, recorded));
        } catch (error) {
          if (error instanceof ObjectGone) throw error;
          // A failed status write is a Kubernetes failure, whichever step wanted it.
          const failure = failureOf(error, 'kubernetes');
          throw Object.assign(
            new Error(`writing status: ${failure?.message ?? String(error)}`, { cause: error }),
            {
              reason: Reason.KubernetesRequestFailed,
            },
          );
        }
      },
      warn,
    };

    /** The one status write of the reconcile, with the Event for its outcome. */
    const finish = async (result: ReconcileResult): Promise<ReconcileResult> => {
      const status = nextStatus(previous, stepTypes, outcomes, fields, generation, now());
      const failed = outcomes.find((o) => !o.ok);
      if (failed && statusChanged(base, status)) warn(failed.reason, failed.message);
      if (!failed && !isTrue(previous?.conditions, ConditionType.Ready))
        events.normal(target(object, ref), Reason.Reconciled, definition.readyMessage);
      await write(status);
      return result;
    };
    const refuse = async (refusal: Refusal): Promise<ReconcileResult> => {
      const status = refusedStatus(previous, stepTypes, refusal, {}, generation, now());
      if (statusChanged(base, status)) warn(refusal.reason, refusal.message);
      await write(status);
      return { requeueAfterMs: deps.resyncMs };
    };

    /** The step running now: an error thrown out of the reconcile is reported on its condition. */
    let running: Step<O, S, State> | undefined;
    try {
      if (!object.metadata.finalizers?.includes(FINALIZER))
        await api.addFinalizer(ref, object.metadata.finalizers);
      const refusal = await definition.admit(object);
      if (refusal) return await refuse(refusal);
      for (const step of definition.steps) {
        running = step;
        const result = await step.run(context);
        if ('refused' in result) return await refuse(result.refused);
        outcomes.push({
          type: step.condition,
          ok: result.ok,
          reason: result.reason,
          message: result.message,
        });
        if (!result.ok) {
          await finish({});
          if (result.retryAfterMs !== undefined)
            throw new ReportedFailure(result.message, result.retryAfterMs);
          return { requeueAfterMs: result.requeueAfterMs ?? deps.resyncMs };
        }
      }
      running = undefined;
      return await finish({ requeueAfterMs: deps.resyncMs });
    } catch (error) {
      if (error instanceof ObjectGone || error instanceof ReportedFailure || isPacedWrite(error)) throw error;
      // Cut short by the shutdown (a wait aborted): nothing failed, nothing to report.
      if (workerStopping()) throw error;
      // Whatever a step threw ends in its condition (or Ready, when no step ran yet) with a reason
      // and a message, and a Warning Event (once: an unchanged status is not written and sends
      // none); then it is rethrown so the work queue backs off and counts the error.
      const failure = failureOf(error, running?.system);
      if (!failure) throw error;
      try {
        if (running) {
          outcomes.push({ type: running.condition, ok: false, ...failure });
          await finish({});
        } else {
          const status = failedStatus(previous, failure, fields, generation, now());
          if (statusChanged(base, status)) warn(failure.reason, failure.message);
          await write(status);
        }
      } catch (reportError) {
        if (reportError instanceof ObjectGone) throw reportError;
        log.warn({ err: (reportError as Error).message }, 'could not report the failure in status');
      }
      throw error;
    }
  }

  return async function reconcile(key: string): Promise<ReconcileResult> {
    const ref = splitKey(key);
    const log = logger.child({ kind: definition.kind, namespace: ref.namespace, name: ref.name });
    try {
      let object = await definition.get(ref.namespace, ref.name);
      const seen = lastWritten.get(key);
      lastWritten.delete(key);
      if (
        object &&
        seen &&
        seen.uid === object.metadata.uid &&
        seen.resourceVersion !== object.metadata.resourceVersion
      )
        object = await api.live(ref);
      if (!object) return {};
      if (object.metadata.deletionTimestamp) return await remove(ref, object, log);
      return await reconcileObject(ref, object, log);
    } catch (error) {
      // Patched or written after it was deleted (its finalizer removed): not an error.
      if (error instanceof ObjectGone) {
        log.debug('gone while reconciling');
        return {};
      }
      // A write handed back by the operator's own pacing has its slot reserved: come back when it
      // is due. Not an error (no Reconciler error line, no error metric, no backoff growth).
      if (isPacedWrite(error)) {
        const retryAfterMs = retryAfterMsOf(error) ?? 1000;
        log.debug({ retryAfterMs }, 'write paced');
        return { requeueAfterMs: retryAfterMs };
      }
      throw error;
    }
  };
}
