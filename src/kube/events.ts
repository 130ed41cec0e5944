// Kubernetes Events for what users should see: every Warning says what to change. Repeats of
// the same event are suppressed for a while, so a bad namespace annotation does not produce an
// Event per admitted pod.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  /** Namespace of a namespaced object; for a Namespace, its own name. */
  namespace: string;
  uid?: string;
}

export interface EventSink {
  warning(target: EventTarget, reason: string, message: string): void;
  normal(target: EventTarget, reason: string, message: string): void;
}

const REPEAT_WINDOW_MS = 10 * 60 * 1000;
const MAX_REMEMBERED = 10_000;

export class EventRecorder implements EventSink {
  readonly #core: k8s.CoreV1Api;
  readonly #logger: Logger;
  readonly #component: string;
  readonly #recent = new Map<string, number>();

  constructor(kubeConfig: k8s.KubeConfig, logger: Logger, component = 'entra-access') {
    this.#core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.#logger = logger;
    this.#component = component;
  }

  warning(target: EventTarget, reason: string, message: string): void {
    this.#record('Warning', target, reason, message);
  }

  normal(target: EventTarget, reason: string, message: string): void {
    this.#record('Normal', target, reason, message);
  }

  #record(type: 'Warning' | 'Normal', target: EventTarget, reason: string, message: string): void {
    const key = `${type}/${target.kind}/${target.namespace}/${target.name}/${reason}/${message}`;
    const now = Date.now();
    const last = this.#recent.get(key);
    if (last !== undefined && now - last < REPEAT_WINDOW_MS) return;
    if (this.#recent.size >= MAX_REMEMBERED) this.#recent.clear();
    this.#recent.set(key, now);
    const time = new Date(now);
    const event: k8s.CoreV1Event = {
      metadata: { generateName: `${target.name}.`, namespace: target.namespace },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        name: target.name,
        // The apiserver requires it to equal the Event's namespace, for a Namespace object too.
        namespace: target.namespace,
        ...(target.uid ? { uid: target.uid } : {}),
      },
      type,
      reason,
      message,
      source: { component: this.#component },
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
      reportingComponent: this.#component,
    };
    // Fire and forget: an Event is a courtesy; failing to write one never fails the caller.
    this.#core.createNamespacedEvent({ namespace: target.namespace, body: event }).catch((error: unknown) => {
      this.#logger.warn(
        { reason, kind: target.kind, name: target.name, err: (error as Error).message },
        'could not record event',
      );
    });
  }
}
