// The sweep of orphaned federated credentials: FICs this cluster made (its name for their subject,
// its issuer) that no resource owns any more. Resources record every FIC they make before anything
// can be handed back to the queue (steps/federated-credential.ts), so an orphan needs the record
// to be lost: a process killed between an ARM write and the status write, a finalizer removed by
// hand, an operator version before the record existed. Left alone, such a FIC keeps trusting a
// ServiceAccount and counts against the identity's limit of 20.
//
// It costs no ARM read of its own while nothing is orphaned: it looks at the FIC lists the
// reconciles read anyway (ManagedIdentities.onFederatedCredentialsListed). A candidate is swept
// after a grace period, on a fresh list and a fresh look at the index, so a FIC a reconcile has
// just made and not yet recorded is not taken for an orphan.
//
// Deleting a FIC something still uses would break an app, so a candidate is kept when its
// ServiceAccount lists it as left on purpose (RETAINED_CREDENTIALS_ANNOTATION, written by
// deletionPolicy Orphan) or still carries the identity's client ID (whatever runs as it may use
// it: a FIC orphaned on purpose by an older operator, one that was never recorded). What is kept is
// counted and logged, so a platform team can see it.
import type * as k8s from '@kubernetes/client-node';
import type { BindingIndex } from '../api/binding-index.ts';
import { RETAINED_CREDENTIALS_ANNOTATION, WI_CLIENT_ID_ANNOTATION } from '../api/constants.ts';
import { ficName } from '../azure/fic-name.ts';
import type { ExistingFic } from '../azure/fic-plan.ts';
import { identityIdKey } from '../azure/identity-id.ts';
import type { ManagedIdentities } from '../azure/managed-identities.ts';
import { statusOf } from '../kube/client.ts';
import type { ControllerMetrics } from '../observability/controller-metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { isPacedWrite } from './reconcile/failures.ts';
import { subjectServiceAccount } from './steps/federated-credential.ts';
import { retryAfterMsOf, WorkQueue } from './workqueue.ts';

export interface OrphanCandidate {
  name: string;
  namespace: string;
  serviceAccount: string;
}

/** The ARM ID of a FIC: what RETAINED_CREDENTIALS_ANNOTATION lists. */
export function credentialId(identityResourceId: string, name: string): string {
  return `${identityResourceId}/federatedIdentityCredentials/${name}`;
}

/**
 * The FICs of `identityResourceId` that this cluster made and no resource owns. Ours: our issuer,
 * a ServiceAccount subject, and exactly the name this cluster gives that subject. Owned: a
 * resource (of any kind, being deleted or not) binds that ServiceAccount to this identity, or its
 * status records this FIC. Pure.
 */
export function orphanCandidates(
  identityResourceId: string,
  fics: readonly ExistingFic[],
  context: { bindings: BindingIndex; clusterName: string; issuer: string },
): OrphanCandidate[] {
  const identity = identityIdKey(identityResourceId);
  const onIdentity = context.bindings.onIdentity(identityResourceId);
  const recorded = new Set(
    onIdentity.flatMap((binding) =>
      binding.recorded
        .filter((record) => identityIdKey(record.identityResourceId) === identity)
        .map((record) => record.name.toLowerCase()),
    ),
  );
  const candidates: OrphanCandidate[] = [];
  for (const fic of fics) {
    if (fic.issuer !== context.issuer) continue;
    const subject = subjectServiceAccount(fic.subject);
    if (!subject) continue;
    const [namespace, serviceAccount] = subject;
    if (ficName(context.clusterName, namespace, serviceAccount).toLowerCase() !== fic.name.toLowerCase())
      continue;
    if (recorded.has(fic.name.toLowerCase())) continue;
    const wanted = context.bindings
      .ofServiceAccount(namespace, serviceAccount)
      .some((binding) => identityIdKey(binding.identityResourceId) === identity);
    if (!wanted) candidates.push({ name: fic.name, namespace, serviceAccount });
  }
  return candidates;
}

export interface SweeperOptions {
  azure: Pick<ManagedIdentities, 'getIdentity' | 'listFederatedCredentials' | 'deleteFederatedCredential'>;
  core: Pick<k8s.CoreV1Api, 'readNamespacedServiceAccount'>;
  bindings: BindingIndex;
  clusterName: string;
  issuer: string;
  logger: Logger;
  metrics?: ControllerMetrics;
  /** How long a candidate stays unowned before it is swept. Default 30 s. */
  graceMs?: number;
}

/** Retained FICs are not looked at again for this long (the annotation is re-read after). */
const RETAINED_MEMORY_MS = 60 * 60 * 1000;

export class FederatedCredentialSweeper {
  readonly #options: SweeperOptions;
  readonly #queue: WorkQueue;
  readonly #graceMs: number;
  /** Identity key → resource ID as listed. */
  readonly #identities = new Map<string, string>();
  /** Identities being swept: their own re-list must not queue them again. */
  readonly #sweeping = new Set<string>();
  /** FIC ARM ID (lower-cased) → until when it is known to be retained. */
  readonly #retained = new Map<string, number>();

  constructor(options: SweeperOptions) {
    this.#options = options;
    this.#graceMs = options.graceMs ?? 30_000;
    this.#queue = new WorkQueue({
      name: 'federatedcredentialsweep',
      concurrency: 1,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      logger: options.logger,
      process: (key) => this.#sweep(key),
    });
  }

  start(): void {
    this.#queue.start();
  }

  stop(): Promise<void> {
    return this.#queue.shutdown();
  }

  /** A list of `identityResourceId`'s FICs was read: queue the identity if it holds candidates. */
  observe(identityResourceId: string, fics: readonly ExistingFic[]): void {
    const key = identityIdKey(identityResourceId);
    if (this.#sweeping.has(key)) return;
    const now = Date.now();
    const candidates = orphanCandidates(identityResourceId, fics, this.#options).filter(
      (candidate) => (this.#retained.get(credentialId(key, candidate.name).toLowerCase()) ?? 0) < now,
    );
    if (candidates.length === 0) return;
    this.#identities.set(key, identityResourceId);
    this.#queue.addAfter(key, this.#graceMs);
  }

  async #sweep(key: string): Promise<{ requeueAfterMs?: number }> {
    const identityResourceId = this.#identities.get(key);
    if (!identityResourceId) return {};
    this.#sweeping.add(key);
    try {
      const fics = await this.#options.azure.listFederatedCredentials(identityResourceId);
      let clientId: string | undefined;
      const identityClientId = async () => {
        clientId ??= (await this.#options.azure.getIdentity(identityResourceId)).clientId;
        return clientId;
      };
      for (const candidate of orphanCandidates(identityResourceId, fics, this.#options)) {
        const id = credentialId(identityResourceId, candidate.name);
        const kept = await this.#keptBecause(candidate, id, identityClientId);
        if (kept) {
          this.#retained.set(id.toLowerCase(), Date.now() + RETAINED_MEMORY_MS);
          this.#options.metrics?.orphanedCredentials.inc({ action: 'retained' });
          this.#options.logger.info(
            {
              identity: identityResourceId,
              name: candidate.name,
              subject: `${candidate.namespace}/${candidate.serviceAccount}`,
            },
            `kept a federated credential that no resource owns: ${kept}`,
          );
          continue;
        }
        await this.#options.azure.deleteFederatedCredential(identityResourceId, candidate.name);
        this.#options.metrics?.orphanedCredentials.inc({ action: 'deleted' });
        this.#options.logger.info(
          {
            identity: identityResourceId,
            name: candidate.name,
            subject: `${candidate.namespace}/${candidate.serviceAccount}`,
          },
          'deleted an orphaned federated credential that no resource owns',
        );
      }
      this.#identities.delete(key);
      return {};
    } catch (error) {
      // A delete waiting for its paced slot: come back then, as the reconciles do.
      if (isPacedWrite(error)) return { requeueAfterMs: retryAfterMsOf(error) ?? 1000 };
      throw error;
    } finally {
      this.#sweeping.delete(key);
    }
  }

  /** Why the candidate must stay, if it must: its ServiceAccount still uses or lists it. */
  async #keptBecause(
    candidate: OrphanCandidate,
    id: string,
    identityClientId: () => Promise<string>,
  ): Promise<string | undefined> {
    let serviceAccount: k8s.V1ServiceAccount;
    try {
      serviceAccount = await this.#options.core.readNamespacedServiceAccount({
        namespace: candidate.namespace,
        name: candidate.serviceAccount,
      });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
    const annotations = serviceAccount.metadata?.annotations ?? {};
    const listed = (annotations[RETAINED_CREDENTIALS_ANNOTATION] ?? '')
      .split(',')
      .map((entry) => entry.trim().toLowerCase());
    if (listed.includes(id.toLowerCase()))
      return `ServiceAccount ${candidate.namespace}/${candidate.serviceAccount} lists it in ${RETAINED_CREDENTIALS_ANNOTATION}`;
    const annotated = annotations[WI_CLIENT_ID_ANNOTATION];
    if (annotated && annotated.toLowerCase() === (await identityClientId()).toLowerCase())
      return `ServiceAccount ${candidate.namespace}/${candidate.serviceAccount} still carries the identity's client ID`;
    return undefined;
  }
}
