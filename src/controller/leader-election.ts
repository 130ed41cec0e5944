// Leader election on a coordination.k8s.io/v1 Lease, following client-go's algorithm with
// controller-runtime's default timings (@kubernetes/client-node has no leader election):
// - a candidate takes the lease when it is absent, released (no holder), expired
//   (renewTime + leaseDurationSeconds < now) or already ours, and polls every RetryPeriod;
// - the leader renews every RetryPeriod and steps down once no renewal has succeeded for
//   RenewDeadline. RenewDeadline < LeaseDuration is what keeps two leaders from overlapping: the
//   old leader stops before anyone may consider its lease expired (given clocks synchronised to
//   well within the 5 s margin, as on AKS nodes);
// - every write carries the resourceVersion read, so of two racing candidates one gets 409;
// - a graceful stop releases the lease (no holder), so a standby takes over at its next poll
//   instead of waiting out the lease.
// After losing leadership run() resolves and the elector does not campaign again by itself:
// whatever onStartedLeading started must be stopped first (controller-runtime exits the process).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { statusOf } from '../kube/client.ts';
import type { ControllerMetrics } from '../observability/controller-metrics.ts';
import type { Logger } from '../observability/logger.ts';

export interface LeaderElectionTimings {
  /** How long a lease is valid after its renewTime. Whole seconds (the Lease stores seconds). */
  leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it gives up leadership. */
  renewDeadlineMs: number;
  /** Interval between attempts to acquire or renew. */
  retryPeriodMs: number;
}

/** controller-runtime's defaults. */
export const DEFAULT_TIMINGS: LeaderElectionTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** The Lease operations the elector needs; an interface so unit tests can use an in-memory store. */
export interface LeaseApi {
  /** The lease, or undefined when it does not exist. */
  read(namespace: string, name: string): Promise<k8s.V1Lease | undefined>;
  /** Fails with 409 when the lease already exists. */
  create(lease: k8s.V1Lease): Promise<k8s.V1Lease>;
  /** Fails with 409 when metadata.resourceVersion is stale. */
  replace(lease: k8s.V1Lease): Promise<k8s.V1Lease>;
}

export interface LeaderCallbacks {
  /**
   * Start the leader's work. `signal` aborts when leadership ends. A rejection before then makes
   * the elector step down and release the lease, so that a healthy replica can lead instead.
   */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Leadership ended (lost, or stop() while leading). Awaited before the lease is released. */
  onStoppedLeading(): void | Promise<void>;
}

export interface LeaderElectorOptions {
  kubeConfig?: k8s.KubeConfig;
  /** Overrides the API built from kubeConfig (unit tests). */
  leaseApi?: LeaseApi;
  namespace: string;
  name: string;
  /** Defaults to hostname + random suffix, unique per process as the algorithm requires. */
  identity?: string;
  timings?: Partial<LeaderElectionTimings>;
  /**
   * Candidates wait RetryPeriod × (1 + jitter × random) between attempts so they do not poll in
   * step. Default 0.2: client-go's 1.2 would stretch a handover after a release to 2.2 × RetryPeriod.
   */
  jitter?: number;
  logger: Logger;
  metrics?: ControllerMetrics;
}

export interface StopOptions {
  /** Release the lease so another replica can take over at once. Default true. */
  release?: boolean;
}

const LEASE_API_VERSION = 'coordination.k8s.io/v1';

/**
 * metav1.MicroTime as the apiserver parses it: RFC 3339 with exactly six fractional digits. The
 * generated client-node serializer passes V1MicroTime fields through untouched (it has no
 * serializer for the type), and a plain Date would go out with three digits, which the apiserver
 * rejects; so the elector always writes these strings. JavaScript clocks give milliseconds, so
 * the last three digits are zero.
 */
export function formatMicroTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Milliseconds since the epoch of a MicroTime as read back (a string; a Date from other code). */
export function parseMicroTime(value: unknown): number | undefined {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isNaN(ms) ? undefined : ms;
}

/** The wire form: MicroTime strings where the generated types say V1MicroTime. */
function microTime(date: Date): k8s.V1MicroTime {
  return formatMicroTime(date) as unknown as k8s.V1MicroTime;
}

export function leaseApiFor(kubeConfig: k8s.KubeConfig): LeaseApi {
  const api = kubeConfig.makeApiClient(k8s.CoordinationV1Api);
  return {
    async read(namespace, name) {
      try {
        return await api.readNamespacedLease({ namespace, name });
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    },
    create: (lease) => api.createNamespacedLease({ namespace: lease.metadata!.namespace!, body: lease }),
    replace: (lease) =>
      api.replaceNamespacedLease({
        namespace: lease.metadata!.namespace!,
        name: lease.metadata!.name!,
        body: lease,
      }),
  };
}

export function defaultIdentity(): string {
  return `${hostname()}_${randomUUID()}`;
}

type Attempt = { held: true } | { held: false; holder?: string };

export class LeaderElector {
  readonly identity: string;
  readonly timings: LeaderElectionTimings;
  readonly #api: LeaseApi;
  readonly #namespace: string;
  readonly #name: string;
  readonly #jitter: number;
  readonly #logger: Logger;
  readonly #metrics: ControllerMetrics | undefined;

  #state: 'idle' | 'candidate' | 'leader' = 'idle';
  /** Bumped by run(), stop() and a loss, so results of an older attempt are ignored. */
  #epoch = 0;
  #callbacks: LeaderCallbacks | undefined;
  #finished: PromiseWithResolvers<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  /** The lease as last read or written by us. */
  #observed: k8s.V1Lease | undefined;
  #leadership: AbortController | undefined;

  constructor(options: LeaderElectorOptions) {
    if (!options.leaseApi && !options.kubeConfig) throw new Error('LeaderElector needs a kubeConfig');
    this.#api = options.leaseApi ?? leaseApiFor(options.kubeConfig!);
    this.#namespace = options.namespace;
    this.#name = options.name;
    this.identity = options.identity ?? defaultIdentity();
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    this.#jitter = options.jitter ?? 0.2;
    this.#logger = options.logger.child({
      lease: `${options.namespace}/${options.name}`,
      identity: this.identity,
    });
    this.#metrics = options.metrics;
    validate(this.timings, this.#jitter);
    this.#setMetric(0);
  }

  get isLeader(): boolean {
    return this.#state === 'leader';
  }

  /**
   * Campaigns until this process leads, then renews. Resolves when leadership ends (lost, or
   * stop()) or stop() is called while campaigning.
   */
  run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.#state !== 'idle') throw new Error('LeaderElector is already running');
    this.#callbacks = callbacks;
    this.#state = 'candidate';
    this.#epoch += 1;
    this.#finished = Promise.withResolvers<void>();
    this.#schedule(0);
    return this.#finished.promise;
  }

  /**
   * Stops campaigning or leading: awaits onStoppedLeading when leading, then releases the lease
   * (unless `release: false`, which leaves it to expire as a crashed process would).
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const wasLeader = this.#state === 'leader';
    this.#epoch += 1;
    this.#state = 'idle';
    this.#clearTimers();
    // Let a request in flight land first, so the release cannot be overtaken by our own renewal.
    await this.#inFlight?.catch(() => {});
    if (wasLeader) await this.#endLeadership('stopped');
    if (options.release ?? true) await this.#release();
    this.#finish();
  }

  #schedule(delayMs: number): void {
    const epoch = this.#epoch;
    this.#timer = setTimeout(() => {
      const attempt = this.#tick(epoch);
      this.#inFlight = attempt;
      void attempt.finally(() => {
        if (this.#inFlight === attempt) this.#inFlight = undefined;
      });
    }, delayMs);
  }

  async #tick(epoch: number): Promise<void> {
    const startedAt = performance.now();
    let attempt: Attempt;
    try {
      attempt = await withTimeout(
        this.#tryAcquireOrRenew(new Date()),
        // A hung request must not stall the loop; the next attempt reads the lease afresh.
        Math.max(this.timings.retryPeriodMs, this.timings.renewDeadlineMs / 2),
      );
    } catch (error) {
      const status = statusOf(error);
      const fields = { err: (error as Error)?.message ?? String(error), status };
      if (status === 409) this.#logger.debug(fields, 'lease changed concurrently; retrying');
      else if (this.#state === 'leader') this.#logger.warn(fields, 'failed to renew the lease');
      else this.#logger.warn(fields, 'failed to acquire the lease');
      attempt = { held: false };
    }
    if (epoch !== this.#epoch) return;

    if (attempt.held) {
      this.#armDeadline(startedAt);
      if (this.#state === 'candidate') this.#startLeading();
    } else if (this.#state === 'leader' && attempt.holder && attempt.holder !== this.identity) {
      // Someone else holds a valid lease: we are not the leader whatever our deadline says.
      await this.#lose(`the lease is held by ${attempt.holder}`);
      return;
    }
    if (epoch !== this.#epoch) return;
    const period = this.timings.retryPeriodMs;
    this.#schedule(this.#state === 'leader' ? period : period * (1 + this.#jitter * Math.random()));
  }

  async #tryAcquireOrRenew(now: Date): Promise<Attempt> {
    const existing = await this.#api.read(this.#namespace, this.#name);
    const stamp = microTime(now);
    const leaseDurationSeconds = this.timings.leaseDurationMs / 1000;
    if (!existing) {
      this.#observed = await this.#api.create({
        apiVersion: LEASE_API_VERSION,
        kind: 'Lease',
        metadata: { name: this.#name, namespace: this.#namespace },
        spec: {
          holderIdentity: this.identity,
          leaseDurationSeconds,
          acquireTime: stamp,
          renewTime: stamp,
          leaseTransitions: 0,
        },
      });
      return { held: true };
    }
    this.#observed = existing;
    const spec = existing.spec ?? {};
    const holder = spec.holderIdentity || undefined;
    const ours = holder === this.identity;
    if (holder && !ours && !isExpired(spec, now.getTime(), leaseDurationSeconds))
      return { held: false, holder };

    const next: k8s.V1LeaseSpec = ours
      ? { ...spec, leaseDurationSeconds, renewTime: stamp }
      : {
          ...spec,
          holderIdentity: this.identity,
          leaseDurationSeconds,
          acquireTime: stamp,
          renewTime: stamp,
          leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
        };
    // metadata carries the resourceVersion read: a concurrent writer makes this fail with 409.
    this.#observed = await this.#api.replace({ ...existing, spec: next });
    if (!ours) this.#logger.info({ previousHolder: holder ?? null }, 'acquired the lease');
    return { held: true };
  }

  #armDeadline(attemptStartedAt: number): void {
    clearTimeout(this.#deadline);
    // Counted from when the successful attempt started, which is no later than the renewTime it
    // wrote: the leader always gives up before the lease could be seen as expired.
    const remaining = this.timings.renewDeadlineMs - (performance.now() - attemptStartedAt);
    const epoch = this.#epoch;
    this.#deadline = setTimeout(() => {
      if (epoch === this.#epoch) void this.#lose('the lease was not renewed within the renew deadline');
    }, remaining);
  }

  #startLeading(): void {
    this.#state = 'leader';
    this.#leadership = new AbortController();
    this.#setMetric(1);
    this.#logger.info('became leader');
    const signal = this.#leadership.signal;
    Promise.resolve()
      .then(() => this.#callbacks?.onStartedLeading(signal))
      .catch((error: unknown) => {
        if (signal.aborted) return;
        this.#logger.error(
          { err: (error as Error)?.message ?? String(error) },
          'leader work failed; stepping down',
        );
        void this.stop();
      });
  }

  async #lose(reason: string): Promise<void> {
    if (this.#state !== 'leader') return;
    this.#epoch += 1;
    this.#state = 'idle';
    this.#clearTimers();
    this.#logger.warn({ reason }, 'lost leadership');
    await this.#endLeadership(reason);
    this.#observed = undefined;
    this.#finish();
  }

  async #endLeadership(reason: string): Promise<void> {
    this.#leadership?.abort(new Error(`leadership ended: ${reason}`));
    this.#leadership = undefined;
    this.#setMetric(0);
    try {
      await this.#callbacks?.onStoppedLeading();
    } catch (error) {
      this.#logger.error({ err: (error as Error)?.message ?? String(error) }, 'onStoppedLeading failed');
    }
  }

  /** Gives the lease up if we hold it: no holder, as client-go does (1 s duration for old clients). */
  async #release(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      let lease = this.#observed;
      try {
        if (attempt > 0 || !lease) lease = await this.#api.read(this.#namespace, this.#name);
        if (!lease || lease.spec?.holderIdentity !== this.identity) return;
        const { holderIdentity: _, ...spec } = lease.spec;
        this.#observed = await this.#api.replace({
          ...lease,
          spec: { ...spec, leaseDurationSeconds: 1, renewTime: microTime(new Date()) },
        });
        this.#logger.info('released the lease');
        return;
      } catch (error) {
        // 409: our copy was stale; read again and retry once.
        if (statusOf(error) === 409 && attempt === 0) continue;
        this.#logger.warn({ err: (error as Error)?.message ?? String(error) }, 'failed to release the lease');
        return;
      }
    }
  }

  #finish(): void {
    this.#finished?.resolve();
    this.#finished = undefined;
  }

  #clearTimers(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#timer = undefined;
    this.#deadline = undefined;
  }

  #setMetric(value: 0 | 1): void {
    this.#metrics?.leaderElectionMasterStatus.set({ name: this.#name }, value);
  }
}

function isExpired(spec: k8s.V1LeaseSpec, nowMs: number, fallbackSeconds: number): boolean {
  const renewed = parseMicroTime(spec.renewTime) ?? parseMicroTime(spec.acquireTime);
  if (renewed === undefined) return true;
  return renewed + (spec.leaseDurationSeconds ?? fallbackSeconds) * 1000 < nowMs;
}

function validate(t: LeaderElectionTimings, jitter: number): void {
  if (!(t.retryPeriodMs > 0)) throw new Error('leader election: retryPeriod must be positive');
  if (!(t.renewDeadlineMs > t.retryPeriodMs))
    throw new Error('leader election: renewDeadline must be longer than retryPeriod');
  if (!(t.leaseDurationMs > t.renewDeadlineMs))
    throw new Error('leader election: leaseDuration must be longer than renewDeadline');
  if (!Number.isInteger(t.leaseDurationMs / 1000))
    throw new Error('leader election: leaseDuration must be whole seconds');
  if (!(jitter >= 0)) throw new Error('leader election: jitter must not be negative');
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`lease request timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
