// The writes a reconcile makes to its own object — status, finalizer — and its live read, for
// any namespaced custom resource. A 404 on any of them means the object is gone (deleted
// meanwhile, its finalizer removed by an earlier run): ObjectGone, which the skeleton ends on
// quietly rather than reporting an error.
import * as k8s from '@kubernetes/client-node';
import { FINALIZER, GROUP, VERSION } from '../../api/constants.ts';
import { statusOf } from '../../kube/client.ts';

/** The object itself answered 404: it is gone, and there is nothing left to do. */
export class ObjectGone extends Error {
  override readonly name = 'ObjectGone';
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const jsonPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);

/** A 404 on a call about the reconciled object means it is gone. */
async function onObject<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (statusOf(error) === 404) throw new ObjectGone('the object is gone', { cause: error });
    throw error;
  }
}

export interface ObjectRef {
  namespace: string;
  name: string;
}

export class ObjectApi<T extends { metadata: k8s.V1ObjectMeta }> {
  readonly #custom: k8s.CustomObjectsApi;
  readonly #plural: string;

  constructor(custom: k8s.CustomObjectsApi, plural: string) {
    this.#custom = custom;
    this.#plural = plural;
  }

  #api(ref: ObjectRef) {
    return { group: GROUP, version: VERSION, plural: this.#plural, namespace: ref.namespace, name: ref.name };
  }

  /** The object as the apiserver has it now; undefined once it is gone. */
  async live(ref: ObjectRef): Promise<T | undefined> {
    try {
      return (await this.#custom.getNamespacedCustomObject(this.#api(ref))) as T;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /**
   * A JSON merge patch of the status subresource (see mergePatchBetween for removals); resolves
   * to the object's metadata as written.
   */
  async patchStatus(ref: ObjectRef, statusPatch: unknown): Promise<k8s.V1ObjectMeta | undefined> {
    const written = (await onObject(
      this.#custom.patchNamespacedCustomObjectStatus(
        { ...this.#api(ref), body: { status: statusPatch } },
        mergePatch,
      ),
    )) as { metadata?: k8s.V1ObjectMeta } | undefined;
    return written?.metadata;
  }

  async addFinalizer(ref: ObjectRef, finalizers: readonly string[] | undefined): Promise<void> {
    const body = finalizers
      ? [{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]
      : [{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }];
    await onObject(this.#custom.patchNamespacedCustomObject({ ...this.#api(ref), body }, jsonPatch));
  }

  /** Removes our finalizer from the list as read; `test` first, so no one else's is ever removed. */
  async removeFinalizer(ref: ObjectRef, finalizers: readonly string[] | undefined): Promise<void> {
    const index = (finalizers ?? []).indexOf(FINALIZER);
    if (index < 0) return;
    await onObject(
      this.#custom.patchNamespacedCustomObject(
        {
          ...this.#api(ref),
          body: [
            { op: 'test', path: `/metadata/finalizers/${index}`, value: FINALIZER },
            { op: 'remove', path: `/metadata/finalizers/${index}` },
          ],
        },
        jsonPatch,
      ),
    );
  }
}
