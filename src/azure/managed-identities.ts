// The operator's ARM client for user-assigned identities and their federated identity credentials
// (docs/design.md §5.2): resolve an identity, ensure one FIC, delete one FIC.
//
// Cross-cutting rules, shared by every caller in the process:
// - at most one write at a time per identity (Azure answers a concurrent one 409), by a keyed lock
//   that is module-level so that even two instances of this class never race on one identity;
// - writes paced client-side per identity and per subscription (token buckets, see PacingOptions);
// - Azure throttles reads too (0.5 GETs and 0.25 LISTs per second per identity): what does not
//   change is cached (an identity's IDs, identity-cache.ts), what does is shared (one FIC list per
//   identity at a time, reused within LIST_SHARING_WINDOW_MS and kept current with our own writes,
//   fic-list-cache.ts), and the reads that remain are paced (read-pacing.ts), waiting off the
//   controller's worker; a no-change resync of N resources on an identity costs at most one LIST
//   per window and no GET;
// - one retry loop (arm-retry.ts) with the SDK's own retries off, so a 429 is never multiplied.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type FederatedIdentityCredential,
  ManagedServiceIdentityClient,
  type ManagedServiceIdentityClientOptionalParams,
} from '@azure/arm-msi';
import type { TokenCredential } from '@azure/identity';
import { canWaitOffWorker, unlessAborted, waitOffWorker } from '../util/worker-slot.ts';
import {
  ArmWritePaced,
  AzureAccessDenied,
  classifyArmError,
  FederatedCredentialLimit,
  FederatedCredentialRejected,
  FederatedCredentialsUnsupported,
  IdentityNotFound,
} from './arm-errors.ts';
import { DEFAULT_RETRY_POLICY, type RetryHooks, type RetryPolicy, withArmRetries } from './arm-retry.ts';
import { ArmStats, armStatsPolicy } from './arm-stats.ts';
import type { CloudSettings } from './cloud.ts';
import { type ListedFics, SharedFicLists } from './fic-list-cache.ts';
import { type DesiredFic, type ExistingFic, type FicPlan, planFederatedCredential } from './fic-plan.ts';
import { DEFAULT_IDENTITY_TTL_MS, IdentityCache } from './identity-cache.ts';
import { formatIdentityId, type IdentityRef, identityKey, parseIdentityId } from './identity-id.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import { DEFAULT_READ_PACING, type ReadKind, ReadPacing, type ReadPacingOptions } from './read-pacing.ts';
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

/**
 * How old a FIC list may be for a decision that writes nothing (the FIC is there, or the identity
 * is full): 5 s, just over the 4.4 s between two LISTs of one identity under the read pacing
 * (0.225/s). Every reconcile needing the list within that time reuses the last one instead of
 * waiting for the next LIST slot, so a burst of reconciles on one identity costs one LIST. The
 * price: another writer's change (a FIC deleted by hand) is seen up to 5 s late, against the
 * milliseconds of an unshared list; the reconcile after that sees it.
 */
export const LIST_SHARING_WINDOW_MS = 5_000;

/**
 * How old a FIC list may be for a write decided under the identity's lock: 30 s. Under the lock
 * the list holds every write of this process (they are applied to it), so what it can miss is only
 * another writer's change in those 30 s, and Azure guards what matters for a write: a FIC with the
 * same issuer and subject made meanwhile is refused as a duplicate, and a 21st FIC as over the
 * limit; either drops the list, and the duplicate is looked up afresh and adopted. Without this,
 * ten resources writing to one identity one paced write (4 s) apart would LIST before each write.
 */
export const LIST_WRITE_WINDOW_MS = 30_000;

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
  /** Default DEFAULT_READ_PACING (a little under Azure's read limits). */
  readPacing?: ReadPacingOptions;
  /** How long an identity's IDs are kept; default DEFAULT_IDENTITY_TTL_MS. */
  identityTtlMs?: number;
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
  readonly #readPacing: ReadPacing;
  readonly #identities: IdentityCache<Omit<IdentityInfo, 'resourceId'>>;
  readonly #lists = new SharedFicLists();
  readonly #maxInlineWaitMs: number;
  readonly #clients = new Map<string, ManagedServiceIdentityClient>();
  /**
   * Called with every list of an identity's FICs this client reads from ARM (the sweep of orphaned
   * FICs looks at them, at no extra ARM read); not for a shared list handed out again.
   */
  onFederatedCredentialsListed: ((resourceId: string, fics: readonly ExistingFic[]) => void) | undefined;
  /**
   * Called after this client deleted a FIC (ARM answered 200): the identity has room for another,
   * so resources refused at its limit can try again (src/controller/component.ts).
   */
  onFederatedCredentialDeleted: ((resourceId: string, name: string) => void) | undefined;

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
    this.#readPacing = new ReadPacing(options.readPacing ?? DEFAULT_READ_PACING);
    this.#identities = new IdentityCache(options.identityTtlMs ?? DEFAULT_IDENTITY_TTL_MS);
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

  /**
   * A read: every attempt paced (read-pacing.ts), each wait for a slot with the worker given back,
   * and a 429 holds back the identity's and subscription's reads of that kind until Azure allows
   * them again.
   */
  #read<T>(kind: ReadKind, ref: IdentityRef, operation: string, call: () => Promise<T>): Promise<T> {
    const identity = identityKey(ref);
    const subscription = ref.subscriptionId.toLowerCase();
    return withArmRetries(
      operation,
      async () => {
        try {
          return await call();
        } finally {
          this.#readPacing.completed(kind, identity, Date.now());
        }
      },
      this.#policy,
      this.#hooks({
        beforeAttempt: async () => {
          for (const scope of ReadPacing.scopes) {
            const key = scope === 'identity' ? identity : scope === 'subscription' ? subscription : '';
            const waitMs = this.#readPacing.reserve(kind, scope, key, Date.now());
            if (waitMs > 0) await waitOffWorker((signal) => sleep(waitMs, undefined, { signal }));
          }
        },
        onRetryable: (failure, delayMs) => {
          if (failure.kind !== 'throttled') return;
          const now = Date.now();
          this.#readPacing.pauseUntil(kind, identity, subscription, now + delayMs, now);
        },
      }),
    );
  }

  /**
   * `shared`, awaited with the worker given back: it is a read another caller started, which may
   * wait for its pacing slot for seconds.
   */
  #join<T>(shared: Promise<T>): Promise<T> {
    return waitOffWorker((signal) => unlessAborted(shared, signal));
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

  /**
   * Errors that mean the same whatever the call: a missing identity (whose IDs and FIC list are
   * then forgotten), missing permissions, a region without FICs.
   */
  #commonError(error: unknown, resourceId: string, operation: string): unknown {
    const failure = classifyArmError(error, Date.now());
    if (failure.kind === 'notFound') {
      const key = identityKey(parseIdentityId(resourceId));
      this.#identities.forget(key);
      this.#lists.forget(key);
      return new IdentityNotFound(resourceId, failure.message);
    }
    if (failure.kind === 'denied')
      return new AzureAccessDenied(operation, failure.statusCode ?? 0, failure.message);
    if (failure.kind === 'unsupported')
      return new FederatedCredentialsUnsupported(resourceId, failure.message);
    return error;
  }

  /**
   * The identity's client, principal and tenant IDs: from the cache (identity-cache.ts), else from
   * the GET in flight for it, else from a GET of our own. IdentityNotFound is never cached.
   */
  async getIdentity(resourceId: string): Promise<IdentityInfo> {
    const ref = parseIdentityId(resourceId);
    const key = identityKey(ref);
    const found = (ids: Omit<IdentityInfo, 'resourceId'>) => ({ resourceId: formatIdentityId(ref), ...ids });
    const cached = this.#identities.peek(key, Date.now());
    if (cached) return found(cached);
    const pending = this.#identities.pending(key);
    if (pending) return found(await this.#join(pending));
    const operation = `GET identity ${resourceId}`;
    const read = this.#read('get', ref, operation, () =>
      this.#client(ref.subscriptionId).userAssignedIdentities.get(ref.resourceGroup, ref.name),
    ).then(
      ({ clientId, principalId, tenantId }) => {
        if (!clientId || !principalId || !tenantId) {
          throw new Error(`ARM returned identity ${resourceId} without clientId, principalId or tenantId`);
        }
        return { clientId, principalId, tenantId };
      },
      (error: unknown) => {
        throw this.#commonError(error, resourceId, operation);
      },
    );
    return found(await this.#identities.track(key, read, () => Date.now()));
  }

  /** The identity's FICs, as shared within LIST_SHARING_WINDOW_MS (fic-list-cache.ts). */
  async listFederatedCredentials(resourceId: string): Promise<ExistingFic[]> {
    return (await this.#list(parseIdentityId(resourceId), resourceId, LIST_SHARING_WINDOW_MS)).fics;
  }

  /**
   * A list of the identity's FICs no older than `maxAgeMs`: the one held, else the LIST in flight,
   * else a LIST of our own (paced, and reported to onFederatedCredentialsListed).
   */
  async #list(ref: IdentityRef, resourceId: string, maxAgeMs: number): Promise<ListedFics> {
    const key = identityKey(ref);
    const held = this.#lists.fresh(key, Date.now(), maxAgeMs);
    if (held) return held;
    const pending = this.#lists.pending(key);
    if (pending) return this.#join(pending);
    const operation = `LIST federated credentials of ${resourceId}`;
    let sentAt = 0;
    const read = this.#read('list', ref, operation, async () => {
      sentAt = Date.now();
      const fics: ExistingFic[] = [];
      for await (const fic of this.#client(ref.subscriptionId).federatedIdentityCredentials.list(
        ref.resourceGroup,
        ref.name,
      )) {
        fics.push(toExisting(fic));
      }
      return fics;
    }).then(
      (fics) => {
        this.onFederatedCredentialsListed?.(formatIdentityId(ref), fics);
        return { fics, sentAt };
      },
      (error: unknown) => {
        throw this.#commonError(error, resourceId, operation);
      },
    );
    return this.#lists.track(key, read);
  }

  /**
   * Makes the identity trust `spec.issuer` + `spec.subject` for `spec.audience`, writing only when
   * needed (see fic-plan.ts). Throws IdentityNotFound, FederatedCredentialLimit,
   * FederatedCredentialRejected, AzureAccessDenied or AzureRetryableError.
   */
  async ensureFederatedCredential(resourceId: string, spec: FicSpec): Promise<EnsureResult> {
    const ref = parseIdentityId(resourceId);
    const key = identityKey(ref);
    // Optimistic look without the lock, on the shared list: the common no-change case never
    // queues behind writes, and a burst of reconciles on one identity costs one LIST.
    const first = this.#settle(
      planFederatedCredential((await this.#list(ref, resourceId, LIST_SHARING_WINDOW_MS)).fics, spec),
      resourceId,
    );
    if (first) return first;
    return this.#lock.run(key, async () => {
      // Under the lock the shared list holds every write of this process (each is applied to it),
      // so concurrent ensures for one service account write once and the rest find it unchanged.
      // A write may rest on a list up to LIST_WRITE_WINDOW_MS old (Azure refuses what it missed);
      // a decision not to write needs one within LIST_SHARING_WINDOW_MS, as above.
      for (let pass = 1; ; pass++) {
        let listed = await this.#list(ref, resourceId, pass === 1 ? LIST_WRITE_WINDOW_MS : 0);
        let plan = planFederatedCredential(listed.fics, spec);
        if (!plan.write && Date.now() - listed.listedAt > LIST_SHARING_WINDOW_MS) {
          listed = await this.#list(ref, resourceId, LIST_SHARING_WINDOW_MS);
          plan = planFederatedCredential(listed.fics, spec);
        }
        const settled = this.#settle(plan, resourceId);
        if (settled) return settled;
        if (!plan.write) throw new Error('unreachable: an unsettled plan writes');
        try {
          await this.#put(ref, plan.name, spec);
          this.#lists.put(key, {
            name: plan.name,
            issuer: spec.issuer,
            subject: spec.subject,
            audiences: [spec.audience],
          });
          return { name: plan.name, action: plan.action };
        } catch (error) {
          const kind = classifyArmError(error, Date.now()).kind;
          // Azure knows of a FIC the list does not: drop the list.
          if (kind === 'duplicate' || kind === 'limit') this.#lists.forget(key);
          // Someone outside this process created the same issuer+subject since the list: look
          // again and adopt it (once; a second time means Azure disagrees with our reading).
          if (kind === 'duplicate' && pass === 1) continue;
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
    const key = identityKey(ref);
    const client = () => this.#client(ref.subscriptionId).federatedIdentityCredentials;
    const operation = `DELETE federated credential ${name} on ${resourceId}`;
    return this.#lock.run(key, async () => {
      try {
        await this.#read('get', ref, `GET federated credential ${name}`, () =>
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
        this.#lists.remove(key, name);
        // 204: ARM found nothing to delete.
        if (status === 204) return { deleted: false };
        this.onFederatedCredentialDeleted?.(formatIdentityId(ref), name);
        return { deleted: true };
      } catch (error) {
        const kind = classifyArmError(error, Date.now()).kind;
        // Gone already (the FIC or the identity), or a region that holds no FICs at all.
        if (kind === 'notFound') {
          this.#lists.remove(key, name);
          return { deleted: false };
        }
        if (kind === 'unsupported') return { deleted: false };
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
