// The operator's ARM client for user-assigned identities and their federated identity credentials
// (docs/design.md §5.2): resolve an identity, ensure one FIC, delete one FIC.
//
// Cross-cutting rules, shared by every caller in the process:
// - at most one write at a time per identity (Azure answers a concurrent one 409), by a keyed lock
//   that is module-level so that even two instances of this class never race on one identity;
// - writes paced client-side per identity and per subscription (token buckets, see PacingOptions);
// - one retry loop (arm-retry.ts) with the SDK's own retries off, so a 429 is never multiplied;
// - reads are never locked or paced: a no-change resync costs one list and no write.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type FederatedIdentityCredential,
  ManagedServiceIdentityClient,
  type ManagedServiceIdentityClientOptionalParams,
} from '@azure/arm-msi';
import type { TokenCredential } from '@azure/identity';
import { canWaitOffWorker, waitOffWorker } from '../util/worker-slot.ts';
import {
  ArmWritePaced,
  AzureAccessDenied,
  classifyArmError,
  FederatedCredentialLimit,
  FederatedCredentialRejected,
  IdentityNotFound,
} from './arm-errors.ts';
import { DEFAULT_RETRY_POLICY, type RetryHooks, type RetryPolicy, withArmRetries } from './arm-retry.ts';
import { ArmStats, armStatsPolicy } from './arm-stats.ts';
import type { CloudSettings } from './cloud.ts';
import { type DesiredFic, type ExistingFic, type FicPlan, planFederatedCredential } from './fic-plan.ts';
import { formatIdentityId, type IdentityRef, identityKey, parseIdentityId } from './identity-id.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import { SharedTokenCredential } from './shared-token-credential.ts';
import type { RateLimit } from './token-bucket.ts';
import { WritePacing } from './write-pacing.ts';

export interface PacingOptions {
  perIdentity: RateLimit;
  perSubscription: RateLimit;
}

/**
 * Azure documents FIC writes at about 0.25/s per identity and 2/s per subscription (10/s per
 * tenant, which one process cannot see whole and is left to Azure's 429s).
 *
 * Per identity the burst is 1: Azure's 0.25/s with nothing spent ahead. A burst of 20 (an
 * identity's whole FIC capacity) was tried and measured (docs/benchmarks.md): against a limit of
 * 0.25/s the bucket refills to 20 whenever an identity is idle for a while, so every identity kept
 * earning 429s (86 for 186 writes in the quick benchmark), each pausing its whole subscription.
 * A fresh identity with 20 service accounts now takes ~80 s, but other identities' writes go
 * meanwhile (a paced write is handed back to the work queue, see DEFAULT_MAX_INLINE_PACING_WAIT_MS).
 *
 * Both rates sit a little under Azure's (0.24/s, 1.8/s): a write paced exactly at the limit
 * reaches Azure a few milliseconds early whenever the network or the event loop jitters, and
 * earns a 429 for it (54 of them in the quick benchmark with exact rates).
 *
 * Per subscription the burst is 2, one second's worth: the subscription's budget is shared with
 * whatever else writes FICs there (Terraform, other clusters), so this layer does not spend it ahead.
 */
export const DEFAULT_PACING: PacingOptions = {
  perIdentity: { perSecond: 0.24, burst: 1 },
  perSubscription: { perSecond: 1.8, burst: 2 },
};

/**
 * Waits before a write up to this are slept in-process; a longer pacing wait is handed back as
 * ArmWritePaced, and a longer 429 Retry-After as AzureRetryableError, so the controller's work
 * queue retries the key later and its worker and the identity's lock serve other writes meanwhile.
 */
export const DEFAULT_MAX_INLINE_PACING_WAIT_MS = 1000;

export interface ManagedIdentitiesOptions {
  /** The operator's credential, or a factory (preferred: a failed token request then gets a new one). */
  credential: TokenCredential | (() => TokenCredential);
  cloud: Pick<CloudSettings, 'armEndpoint' | 'armScope'>;
  pacing?: Partial<PacingOptions>;
  /** Default DEFAULT_MAX_INLINE_PACING_WAIT_MS. */
  maxInlinePacingWaitMs?: number;
  retry?: Partial<RetryPolicy>;
  /**
   * Further SDK client options (tlsOptions, httpClient, additionalPolicies, ...). The endpoint,
   * credential scopes and retry options are always this class's own.
   */
  clientOptions?: ManagedServiceIdentityClientOptionalParams;
  stats?: ArmStats;
  /** Defaults to the process-wide lock; tests may isolate themselves with their own. */
  writeLock?: KeyedMutex;
}

export interface IdentityInfo {
  resourceId: string;
  clientId: string;
  principalId: string;
  tenantId: string;
}

export type FicSpec = DesiredFic;

export type EnsureAction = 'created' | 'updated' | 'unchanged' | 'adopted';

export interface EnsureResult {
  /** The FIC granting the trust: `spec.name`, or the name of the one adopted or updated in place. */
  name: string;
  action: EnsureAction;
}

const processWriteLock = new KeyedMutex();

export class ManagedIdentities {
  readonly stats: ArmStats;
  readonly #credential: TokenCredential;
  readonly #cloud: Pick<CloudSettings, 'armEndpoint' | 'armScope'>;
  readonly #clientOptions: ManagedServiceIdentityClientOptionalParams;
  readonly #policy: RetryPolicy;
  readonly #lock: KeyedMutex;
  readonly #pacing: WritePacing;
  readonly #maxInlineWaitMs: number;
  readonly #clients = new Map<string, ManagedServiceIdentityClient>();
  /**
   * Called with every list of an identity's FICs this client reads (the sweep of orphaned FICs
   * looks at them, at no extra ARM read).
   */
  onFederatedCredentialsListed: ((resourceId: string, fics: readonly ExistingFic[]) => void) | undefined;

  constructor(options: ManagedIdentitiesOptions) {
    // One token for all the per-subscription SDK clients (shared-token-credential.ts).
    this.#credential = new SharedTokenCredential(options.credential);
    this.#cloud = options.cloud;
    this.#clientOptions = options.clientOptions ?? {};
    this.#policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#lock = options.writeLock ?? processWriteLock;
    this.#maxInlineWaitMs = options.maxInlinePacingWaitMs ?? DEFAULT_MAX_INLINE_PACING_WAIT_MS;
    this.#pacing = new WritePacing({
      perIdentity: options.pacing?.perIdentity ?? DEFAULT_PACING.perIdentity,
      perSubscription: options.pacing?.perSubscription ?? DEFAULT_PACING.perSubscription,
      maxInlineWaitMs: this.#maxInlineWaitMs,
    });
    this.stats = options.stats ?? new ArmStats();
  }

  /** One SDK client per subscription (the SDK binds a client to one), made on first use. */
  #client(subscriptionId: string): ManagedServiceIdentityClient {
    const key = subscriptionId.toLowerCase();
    let client = this.#clients.get(key);
    if (!client) {
      const extra = this.#clientOptions;
      client = new ManagedServiceIdentityClient(this.#credential, subscriptionId, {
        ...extra,
        endpoint: this.#cloud.armEndpoint,
        // Needed whenever the endpoint is not the public cloud's: the SDK would derive the scope
        // from the endpoint otherwise.
        credentialScopes: [this.#cloud.armScope],
        retryOptions: { maxRetries: 0 },
        additionalPolicies: [
          ...(extra.additionalPolicies ?? []),
          { policy: armStatsPolicy(this.stats), position: 'perRetry' },
        ],
      });
      this.#clients.set(key, client);
    }
    return client;
  }

  #hooks(extra: Partial<RetryHooks> = {}): RetryHooks {
    return {
      now: () => Date.now(),
      sleep: (ms) =>
        ms > this.#maxInlineWaitMs ? waitOffWorker((signal) => sleep(ms, undefined, { signal })) : sleep(ms),
      ...extra,
      onRetryable: (failure, delayMs, retrying) => {
        this.stats.recordRetry(retrying);
        extra.onRetryable?.(failure, delayMs, retrying);
      },
    };
  }

  #read<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return withArmRetries(operation, call, this.#policy, this.#hooks());
  }

  /**
   * A write: the caller holds the identity's lock; every attempt is paced. `what` names the write
   * (e.g. `put/<fic>`): a write handed back to wait for its pacing slot keeps the slot under it.
   */
  #write<T>(ref: IdentityRef, what: string, operation: string, call: () => Promise<T>): Promise<T> {
    const identity = identityKey(ref);
    const subscription = ref.subscriptionId.toLowerCase();
    return withArmRetries(
      operation,
      async () => {
        try {
          return await call();
        } finally {
          this.#pacing.completed(identity, Date.now());
        }
      },
      // A 429's Retry-After beyond the same bound is waited off the worker, or handed back
      // (AzureRetryableError) where there is no worker to give back.
      {
        ...this.#policy,
        maxWaitMs: canWaitOffWorker()
          ? this.#policy.maxWaitMs
          : Math.min(this.#policy.maxWaitMs, this.#maxInlineWaitMs),
      },
      this.#hooks({
        beforeAttempt: async () => {
          for (;;) {
            const admission = this.#pacing.admit(`${identity}/${what}`, identity, subscription, Date.now());
            if (admission.go) {
              if (admission.sleepMs > 0) await sleep(admission.sleepMs);
              return;
            }
            // A long wait never holds a controller worker. On a work queue's worker the write
            // waits for its reserved slot with the worker given back, and the reconcile finishes
            // in one run; elsewhere it is handed back to the caller to retry when the slot is due.
            if (!canWaitOffWorker()) throw new ArmWritePaced(operation, admission.retryAfterMs);
            await waitOffWorker((signal) => sleep(admission.retryAfterMs, undefined, { signal }));
          }
        },
        onRetryable: (failure, delayMs) => {
          if (failure.kind !== 'throttled') return;
          // Azure does not say which limit it hit; hold back both buckets until it allows writes.
          const now = Date.now();
          this.#pacing.pauseUntil(identity, subscription, now + delayMs, now);
        },
      }),
    );
  }

  /** Errors that mean the same whatever the call: a missing identity, missing permissions. */
  #commonError(error: unknown, resourceId: string, operation: string): unknown {
    const failure = classifyArmError(error, Date.now());
    if (failure.kind === 'notFound') return new IdentityNotFound(resourceId, failure.message);
    if (failure.kind === 'denied')
      return new AzureAccessDenied(operation, failure.statusCode ?? 0, failure.message);
    return error;
  }

  async getIdentity(resourceId: string): Promise<IdentityInfo> {
    const ref = parseIdentityId(resourceId);
    const operation = `GET identity ${resourceId}`;
    try {
      const identity = await this.#read(operation, () =>
        this.#client(ref.subscriptionId).userAssignedIdentities.get(ref.resourceGroup, ref.name),
      );
      const { clientId, principalId, tenantId } = identity;
      if (!clientId || !principalId || !tenantId) {
        throw new Error(`ARM returned identity ${resourceId} without clientId, principalId or tenantId`);
      }
      return { resourceId: formatIdentityId(ref), clientId, principalId, tenantId };
    } catch (error) {
      throw this.#commonError(error, resourceId, operation);
    }
  }

  async listFederatedCredentials(resourceId: string): Promise<ExistingFic[]> {
    return this.#list(parseIdentityId(resourceId), resourceId);
  }

  async #list(ref: IdentityRef, resourceId: string): Promise<ExistingFic[]> {
    const operation = `LIST federated credentials of ${resourceId}`;
    try {
      return await this.#read(operation, async () => {
        const fics: ExistingFic[] = [];
        for await (const fic of this.#client(ref.subscriptionId).federatedIdentityCredentials.list(
          ref.resourceGroup,
          ref.name,
        )) {
          fics.push(toExisting(fic));
        }
        return fics;
      }).then((fics) => {
        this.onFederatedCredentialsListed?.(formatIdentityId(ref), fics);
        return fics;
      });
    } catch (error) {
      throw this.#commonError(error, resourceId, operation);
    }
  }

  /**
   * Makes the identity trust `spec.issuer` + `spec.subject` for `spec.audience`, writing only when
   * needed (see fic-plan.ts). Throws IdentityNotFound, FederatedCredentialLimit,
   * FederatedCredentialRejected, AzureAccessDenied or AzureRetryableError.
   */
  async ensureFederatedCredential(resourceId: string, spec: FicSpec): Promise<EnsureResult> {
    const ref = parseIdentityId(resourceId);
    // Optimistic look without the lock: the common no-change case never queues behind writes.
    const first = this.#settle(planFederatedCredential(await this.#list(ref, resourceId), spec), resourceId);
    if (first) return first;
    return this.#lock.run(identityKey(ref), async () => {
      // Under the lock the list is current (no other write of this process can intervene), so
      // concurrent ensures for one service account write once and the rest find it unchanged.
      for (let pass = 1; ; pass++) {
        const plan = planFederatedCredential(await this.#list(ref, resourceId), spec);
        const settled = this.#settle(plan, resourceId);
        if (settled) return settled;
        if (!plan.write) throw new Error('unreachable: an unsettled plan writes');
        try {
          await this.#put(ref, plan.name, spec);
          return { name: plan.name, action: plan.action };
        } catch (error) {
          // Someone outside this process created the same issuer+subject since the list: look
          // again and adopt it (once; a second time means Azure disagrees with our reading).
          if (classifyArmError(error, Date.now()).kind === 'duplicate' && pass === 1) continue;
          throw this.#writeError(error, resourceId, plan.name);
        }
      }
    });
  }

  /** The result of a plan that needs no write, the error of one that cannot, else undefined. */
  #settle(plan: FicPlan, resourceId: string): EnsureResult | undefined {
    if (plan.action === 'limit') {
      throw new FederatedCredentialLimit(
        resourceId,
        `it has ${plan.count}; none matches this service account`,
      );
    }
    return plan.write ? undefined : { name: plan.name, action: plan.action };
  }

  async #put(ref: IdentityRef, name: string, spec: FicSpec): Promise<void> {
    const body: FederatedIdentityCredential = {
      issuer: spec.issuer,
      subject: spec.subject,
      audiences: [spec.audience],
    };
    await this.#write(
      ref,
      `put/${name}`,
      `PUT federated credential ${name} on ${formatIdentityId(ref)}`,
      () =>
        this.#client(ref.subscriptionId).federatedIdentityCredentials.createOrUpdate(
          ref.resourceGroup,
          ref.name,
          name,
          body,
        ),
    );
  }

  #writeError(error: unknown, resourceId: string, ficName: string): unknown {
    const failure = classifyArmError(error, Date.now());
    if (failure.kind === 'limit') return new FederatedCredentialLimit(resourceId, failure.message);
    if (failure.kind === 'rejected' || failure.kind === 'duplicate') {
      return new FederatedCredentialRejected(resourceId, ficName, failure.message);
    }
    return this.#commonError(error, resourceId, `PUT federated credential ${ficName}`);
  }

  /**
   * Deletes FIC `name`; `deleted: false` when it (or the identity) was already gone, in which case
   * no write is spent.
   */
  async deleteFederatedCredential(resourceId: string, name: string): Promise<{ deleted: boolean }> {
    const ref = parseIdentityId(resourceId);
    const client = () => this.#client(ref.subscriptionId).federatedIdentityCredentials;
    const operation = `DELETE federated credential ${name} on ${resourceId}`;
    return this.#lock.run(identityKey(ref), async () => {
      try {
        await this.#read(`GET federated credential ${name}`, () =>
          client().get(ref.resourceGroup, ref.name, name),
        );
        let status: number | undefined;
        await this.#write(ref, `delete/${name}`, operation, () =>
          client().delete(ref.resourceGroup, ref.name, name, {
            onResponse: (response) => {
              status = response.status;
            },
          }),
        );
        // 204: ARM found nothing to delete.
        return { deleted: status !== 204 };
      } catch (error) {
        if (classifyArmError(error, Date.now()).kind === 'notFound') return { deleted: false };
        throw this.#commonError(error, resourceId, operation);
      }
    });
  }
}

function toExisting(fic: FederatedIdentityCredential): ExistingFic {
  return {
    name: fic.name ?? '',
    issuer: fic.issuer ?? '',
    subject: fic.subject ?? '',
    audiences: fic.audiences ?? [],
  };
}
