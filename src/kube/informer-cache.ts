// An informer-backed read cache with the two things client-node's informer lacks:
// restart after a non-timeout error (client-node's ListWatch stops for good on one), and a live
// GET on a miss, because a chart often creates a ServiceAccount and its Deployment together and
// the pod's admission can arrive before the watch event.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.ts';
import { BackoffCounter } from '../util/backoff.ts';
import { statusOf } from './client.ts';

export interface InformerCacheOptions<T extends k8s.KubernetesObject> {
  kind: string;
  /** Watch path, e.g. /api/v1/namespaces. */
  path: string;
  list: () => Promise<k8s.KubernetesListObject<T>>;
  /** Live GET used on a cache miss; resolves undefined on 404. */
  get: (name: string, namespace?: string) => Promise<T>;
  logger: Logger;
  /** Delay before restarting a failed informer; doubled per consecutive failure up to 30 s. */
  restartDelayMs?: number;
}

const MAX_RESTART_DELAY_MS = 30_000;

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * What the cache keeps of an object: everything but metadata.managedFields and kubectl's
 * last-applied annotation, which nothing here reads and which are often most of a small object's
 * size (client-go's informers are usually given the same transform). Mutates and returns `object`:
 * list items and watch events are fresh parses, owned by the cache.
 */
export function stripForCache<T extends k8s.KubernetesObject>(object: T): T {
  const metadata = object?.metadata;
  if (!metadata) return object;
  if (metadata.managedFields !== undefined) delete metadata.managedFields;
  if (metadata.annotations && LAST_APPLIED in metadata.annotations) {
    delete metadata.annotations[LAST_APPLIED];
  }
  return object;
}

/** A Watch whose events carry stripped objects. */
function strippingWatch(watch: k8s.Watch): k8s.Watch {
  return {
    watch: (path, queryParams, callback, done) =>
      watch.watch(
        path,
        queryParams,
        (phase, object, watchObj) => callback(phase, stripForCache(object), watchObj),
        done,
      ),
  } as k8s.Watch;
}

export class InformerCache<T extends k8s.KubernetesObject> {
  readonly #informer: k8s.Informer<T> & k8s.ObjectCache<T>;
  readonly #options: InformerCacheOptions<T>;
  #synced = false;
  #stopped = false;
  /** Failed attempts since the last one that listed and started watching. */
  readonly #restarts: BackoffCounter;
  /** Counts error callbacks: client-node's start() resolves even when its list failed. */
  #errors = 0;
  #onSynced: Array<() => void> = [];
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(kubeConfig: k8s.KubeConfig, options: InformerCacheOptions<T>) {
    this.#options = options;
    const base = Math.min(options.restartDelayMs ?? 1000, MAX_RESTART_DELAY_MS);
    this.#restarts = new BackoffCounter({ baseDelayMs: base, maxDelayMs: MAX_RESTART_DELAY_MS });
    // As k8s.makeInformer, with what is cached (list items and watch objects) stripped.
    this.#informer = new k8s.ListWatch<T>(
      options.path,
      strippingWatch(new k8s.Watch(kubeConfig)),
      async () => {
        const list = await options.list();
        for (const item of list.items ?? []) stripForCache(item);
        return list;
      },
      false,
    );
    this.#informer.on('error', (error) => {
      this.#errors += 1;
      this.#restart(error);
    });
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves once a list has filled the cache (after restarts, if the first attempts fail). */
  async start(): Promise<void> {
    this.#stopped = false;
    const synced = new Promise<void>((resolve) => this.#onSynced.push(resolve));
    await this.#attempt();
    await synced;
  }

  async #attempt(): Promise<void> {
    const errorsBefore = this.#errors;
    await this.#informer.start();
    if (this.#errors !== errorsBefore) return;
    // Listed and watching: only now does the backoff start over. Not on client-node's 'connect',
    // which it emits before it lists, so a failing list would be retried every base delay forever.
    this.#restarts.reset();
    if (!this.#synced) {
      this.#synced = true;
      for (const resolve of this.#onSynced.splice(0)) resolve();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    await this.#informer.stop();
  }

  /** Events for add/update/delete, for callers that keep derived indexes. */
  on(verb: 'add' | 'update' | 'delete', callback: (object: T) => void): void {
    this.#informer.on(verb, callback);
  }

  list(namespace?: string): ReadonlyArray<T> {
    return this.#informer.list(namespace);
  }

  /** From the cache, else a live GET; undefined only when the apiserver says 404. Other errors throw. */
  async get(name: string, namespace?: string): Promise<T | undefined> {
    const cached = this.#informer.get(name, namespace);
    if (cached) return cached;
    try {
      return await this.#options.get(name, namespace);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  #restart(error: unknown): void {
    if (this.#stopped) return;
    const delay = this.#restarts.next();
    this.#options.logger.warn(
      { kind: this.#options.kind, err: (error as Error)?.message ?? String(error), retryInMs: delay },
      'watch failed; restarting informer',
    );
    this.#restartTimer = setTimeout(() => {
      this.#attempt().catch((e: unknown) => this.#restart(e));
    }, delay);
  }
}
