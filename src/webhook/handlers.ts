// One handler per kind: check the request is what this endpoint serves, fetch what the policy
// needs (from caches), run the pure policy, record Events, and build the AdmissionReview answer.
import { EXTRA_POD_LABELS_ANNOTATION } from '../api/constants.ts';
import type { InjectionModeSetting } from '../config.ts';
import type { EventSink } from '../kube/events.ts';
import type { Logger } from '../observability/logger.ts';
import {
  type AdmissionRequest,
  type AdmissionReviewResponse,
  admissionResponse,
  allow,
  MalformedAdmissionReview,
} from './admission.ts';
import type { Lookups } from './lookups.ts';
import { mutateNamespace, namespaceFacts } from './policy/namespace.ts';
import { mutatePod } from './policy/pod.ts';
import { mutateServiceAccount } from './policy/service-account.ts';
import type { InjectionMode, NamespaceFacts, PolicyResult } from './policy/types.ts';

export type Outcome = 'patched' | 'unchanged' | 'denied' | 'skipped' | 'error';

export interface HandlerResult {
  response: AdmissionReviewResponse;
  outcome: Outcome;
}

export interface AdmissionHandler {
  /** Kind label for metrics and logs. */
  kind: 'Pod' | 'ServiceAccount' | 'Namespace';
  handle(request: AdmissionRequest): Promise<HandlerResult>;
}

export interface WebhookSettings {
  /** entra-access's own namespace: never mutated. */
  ownNamespace: string;
  injectionMode: InjectionModeSetting;
  extraPodLabels: Record<string, string>;
  tenantId: string;
  authorityHost: string;
}

export interface HandlerDeps {
  lookups: Lookups;
  events: EventSink;
  logger: Logger;
  settings: WebhookSettings;
}

function expectKind(request: AdmissionRequest, kind: string): void {
  if (request.kind.group !== '' || request.kind.version !== 'v1' || request.kind.kind !== kind) {
    const got = `${request.kind.group || 'core'}/${request.kind.version} ${request.kind.kind}`;
    throw new MalformedAdmissionReview(`this endpoint admits core/v1 ${kind} objects, got ${got}`);
  }
}

function answer(uid: string, result: PolicyResult): HandlerResult {
  let outcome: Outcome = result.patch.length > 0 ? 'patched' : 'unchanged';
  if (result.denied !== undefined) outcome = 'denied';
  return { response: admissionResponse(uid, result), outcome };
}

const skipped = (uid: string): HandlerResult => ({ response: allow(uid), outcome: 'skipped' });

function denied(uid: string, message: string): HandlerResult {
  return answer(uid, { patch: [], warnings: [], denied: message });
}

export function createHandlers(
  deps: HandlerDeps,
): Record<'pod' | 'serviceAccount' | 'namespace', AdmissionHandler> {
  const { lookups, events, logger, settings } = deps;

  /** The namespace's facts, or undefined when it is ours, unknown or not opted in. */
  async function optedInNamespace(request: AdmissionRequest): Promise<NamespaceFacts | undefined> {
    const name = request.namespace;
    if (!name || name === settings.ownNamespace) return undefined;
    const namespace = await lookups.namespace(name);
    if (!namespace) return undefined;
    const facts = namespaceFacts(namespace as unknown as Record<string, unknown>);
    if (!facts.optedIn) return undefined;
    if (facts.extraPodLabelErrors.length > 0 && !request.dryRun) {
      events.warning(
        { apiVersion: 'v1', kind: 'Namespace', name, namespace: name, uid: namespace.metadata?.uid },
        'InvalidExtraPodLabels',
        `Skipped invalid entries of annotation ${EXTRA_POD_LABELS_ANNOTATION}: ${facts.extraPodLabelErrors.join('; ')}. Fix the annotation to k=v,k2=v2 with valid label keys and values.`,
      );
    }
    return facts;
  }

  async function resolveMode(): Promise<InjectionMode> {
    if (settings.injectionMode !== 'auto') return settings.injectionMode;
    return (await lookups.azureWorkloadIdentityWebhookExists()) ? 'label' : 'inject';
  }

  return {
    pod: {
      kind: 'Pod',
      async handle(request) {
        expectKind(request, 'Pod');
        if (request.operation !== 'CREATE') return skipped(request.uid);
        let facts: NamespaceFacts | undefined;
        try {
          facts = await optedInNamespace(request);
        } catch (error) {
          return denied(
            request.uid,
            `entra-access could not read namespace ${request.namespace}: ${(error as Error).message}. The pod is refused rather than started without its workload identity; retry.`,
          );
        }
        if (!facts) return skipped(request.uid);
        const spec = (request.object.spec ?? {}) as { serviceAccountName?: string; serviceAccount?: string };
        const serviceAccountName = spec.serviceAccountName || spec.serviceAccount || 'default';
        let serviceAccount: Record<string, unknown> | undefined;
        let mode: InjectionMode;
        try {
          serviceAccount = (await lookups.serviceAccount(facts.name, serviceAccountName)) as
            | Record<string, unknown>
            | undefined;
          mode = await resolveMode();
        } catch (error) {
          return denied(
            request.uid,
            `entra-access could not look up ServiceAccount ${facts.name}/${serviceAccountName} or the injection mode: ${(error as Error).message}. The pod is refused rather than started without its workload identity; retry.`,
          );
        }
        const binding = lookups.binding(facts.name, serviceAccountName);
        const result = mutatePod({
          pod: request.object,
          namespace: facts,
          ...(serviceAccount ? { serviceAccount } : {}),
          ...(binding ? { binding } : {}),
          settings: {
            mode,
            extraPodLabels: settings.extraPodLabels,
            tenantId: settings.tenantId,
            authorityHost: settings.authorityHost,
          },
        });
        return answer(request.uid, result);
      },
    },

    serviceAccount: {
      kind: 'ServiceAccount',
      async handle(request) {
        expectKind(request, 'ServiceAccount');
        if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return skipped(request.uid);
        let facts: NamespaceFacts | undefined;
        try {
          facts = await optedInNamespace(request);
        } catch (error) {
          // Unlike a pod, a ServiceAccount admitted without its annotations is repaired by the
          // controller on its next reconcile: never block ServiceAccount writes (a chart install)
          // because the namespace could not be read.
          logger.warn(
            {
              uid: request.uid,
              kind: 'ServiceAccount',
              namespace: request.namespace,
              err: (error as Error).message,
            },
            'namespace lookup failed; service account admitted unchanged',
          );
          return skipped(request.uid);
        }
        if (!facts) return skipped(request.uid);
        const name = String(
          (request.object.metadata as { name?: unknown } | undefined)?.name ?? request.name ?? '',
        );
        const binding = lookups.binding(facts.name, name);
        const result = mutateServiceAccount({
          serviceAccount: request.object,
          namespace: facts,
          ...(binding ? { binding } : {}),
          tenantId: settings.tenantId,
        });
        if (result.conflict) {
          logger.info(
            { uid: request.uid, kind: 'ServiceAccount', namespace: facts.name, name, ...result.conflict },
            'service account carries a different client-id; left as set',
          );
        }
        return answer(request.uid, result);
      },
    },

    namespace: {
      kind: 'Namespace',
      async handle(request) {
        expectKind(request, 'Namespace');
        if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return skipped(request.uid);
        const name = String(
          (request.object.metadata as { name?: unknown } | undefined)?.name ?? request.name ?? '',
        );
        if (name === settings.ownNamespace) return skipped(request.uid);
        return answer(request.uid, mutateNamespace(request.object));
      },
    },
  };
}
