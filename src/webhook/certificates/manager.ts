// Self-managed webhook certificates (--cert-mode=self). Every replica runs a CertificateManager;
// the Secret in the release namespace is the one source of truth, and each pass makes the world
// agree with it:
//   1. read the Secret; if it is absent, unusable, due for renewal or forced, issue what
//      planCertificates says and write it conditionally (create, or replace at the resourceVersion
//      read). A replica that loses the race re-reads and uses the winner's certificates, so one
//      replica writes at a time and all end with the same pair;
//   2. put the Secret's CA bundle into every webhook of the MutatingWebhookConfiguration;
//   3. write the pair into --cert-dir atomically, where the CertificateWatcher swaps it in
//      without a restart. When the trusted CA changed, first wait until the apiserver has had
//      time to see the new bundle, so no admission meets a certificate it cannot verify.
// A pass runs at start, every minute, and on watch events for the Secret and the configuration.
// The retry of a failed pass is this class's own loop, not the controller's WorkQueue: a pass
// carries a forced renewal and hands its result to the caller, start() waits for the first
// success and stop() cuts a propagation wait short, none of which a queue of one string key
// carries. Only the backoff itself is shared (util/backoff.ts).
import type * as k8s from '@kubernetes/client-node';
import type { Config } from '../../config.ts';
import type { Logger } from '../../observability/logger.ts';
import { BackoffCounter } from '../../util/backoff.ts';
import { readServingPair, writeServingFiles } from './cert-dir.ts';
import { expiresAt, isIssuedBy, parseCertificate, splitPemCertificates } from './inspect.ts';
import { createCertificateAuthority, issueServingCertificate, type PemPair } from './issue.ts';
import { serviceCommonName, serviceDnsNames } from './names.ts';
import { ObjectWatch } from './object-watch.ts';
import {
  type CertificateContents,
  type CertificatePlan,
  type CertificateSettings,
  currentCa,
  type ForcedRenewal,
  nextBundle,
  planCertificates,
  type StoredCertificates,
} from './plan.ts';
import { CertificateSecretStore, type StoredSecret, WriteConflict } from './secret-store.ts';
import { type BundleOutcome, WebhookConfigurationClient } from './webhook-configuration.ts';

export interface CertificateManagerOptions {
  kubeConfig: k8s.KubeConfig;
  logger: Logger;
  /** The release namespace, where the Secret lives. */
  namespace: string;
  secretName: string;
  webhookConfigurationName: string;
  certDir: string;
  commonName: string;
  dnsNames: readonly string[];
  ipAddresses?: readonly string[];
  caValidityMs: number;
  certValidityMs: number;
  renewBeforeMs: number;
  /** How often a pass runs without any event; default one minute. */
  resyncIntervalMs?: number;
  /** How long the apiserver gets to load a changed CA bundle before a new CA's certificate is served; default 3 s. */
  propagationDelayMs?: number;
  /** Watch the Secret and the configuration to react at once; default true. */
  watch?: boolean;
  now?: () => Date;
}

/** The options for the process's configuration; `extra` adds names (tests reach the webhook by IP). */
export function certificateManagerOptions(
  config: Config,
  deps: { kubeConfig: k8s.KubeConfig; logger: Logger },
  extra: Partial<CertificateManagerOptions> = {},
): CertificateManagerOptions {
  const { certificates, namespace } = config;
  return {
    kubeConfig: deps.kubeConfig,
    logger: deps.logger,
    namespace,
    secretName: certificates.secretName,
    webhookConfigurationName: certificates.webhookConfigurationName,
    certDir: config.certDir,
    commonName: serviceCommonName(certificates.serviceName, namespace),
    dnsNames: serviceDnsNames(certificates.serviceName, namespace),
    caValidityMs: certificates.caValidityMs,
    certValidityMs: certificates.certValidityMs,
    renewBeforeMs: certificates.renewBeforeMs,
    ...extra,
  };
}

export interface SyncResult {
  /** The Secret generation in use after the pass. */
  generation: number;
  /** What this replica decided; `keep` when the Secret (its own or another replica's) was fine. */
  plan: CertificatePlan['action'];
  /** What this replica wrote to the Secret: `conflict` never appears, a lost race ends in a re-read. */
  secret: 'created' | 'replaced' | 'unchanged';
  bundle: BundleOutcome['status'];
  files: 'written' | 'unchanged';
  servingSerial: string;
}

const DEFAULT_RESYNC_MS = 60_000;
const DEFAULT_PROPAGATION_MS = 3_000;
const MAX_PASSES = 5;
/** A failed pass is retried after 1 s, doubled per failure in a row, up to a minute. */
const RETRY_BACKOFF = { baseDelayMs: 1000, maxDelayMs: 60_000 };

export class CertificateManager {
  readonly #options: CertificateManagerOptions;
  readonly #logger: Logger;
  readonly #store: CertificateSecretStore;
  readonly #configuration: WebhookConfigurationClient;
  readonly #settings: CertificateSettings;
  readonly #watches: ObjectWatch[] = [];
  readonly #now: () => Date;
  #chain: Promise<void> = Promise.resolve();
  #queued = false;
  #stopped = false;
  #synced = false;
  /** Failed passes in a row, at start and after it; a successful pass starts over. */
  readonly #failures = new BackoffCounter(RETRY_BACKOFF);
  #servingNotAfter = 0;
  #lastBundleStatus: BundleOutcome['status'] | undefined;
  #timer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #sleepers = new Set<() => void>();

  constructor(options: CertificateManagerOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'webhook-certificates' });
    this.#store = new CertificateSecretStore(options.kubeConfig, options.namespace, options.secretName);
    this.#configuration = new WebhookConfigurationClient(
      options.kubeConfig,
      options.webhookConfigurationName,
    );
    this.#settings = {
      dnsNames: options.dnsNames,
      ipAddresses: options.ipAddresses ?? [],
      renewBeforeMs: options.renewBeforeMs,
    };
    this.#now = options.now ?? (() => new Date());
    if (options.watch !== false) {
      const request = () => this.#request();
      this.#watches.push(
        new ObjectWatch(
          options.kubeConfig,
          `/api/v1/namespaces/${options.namespace}/secrets`,
          options.secretName,
          request,
          this.#logger,
        ),
        new ObjectWatch(
          options.kubeConfig,
          '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
          options.webhookConfigurationName,
          request,
          this.#logger,
        ),
      );
    }
  }

  /** A pair from the Secret is in --cert-dir and has not expired. */
  get ready(): boolean {
    return this.#synced && this.#servingNotAfter > this.#now().getTime();
  }

  /**
   * Resolves once the first pass has succeeded (retrying with backoff until it does, or until
   * stop), so the webhook server starts with the Secret's pair in --cert-dir. Then passes run every
   * resync interval and on watch events.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#failures.reset();
    while (!this.#stopped) {
      try {
        await this.sync();
        this.#failures.reset();
        break;
      } catch (error) {
        const retryInMs = this.#failures.next();
        this.#logger.warn({ err: (error as Error).message, retryInMs }, 'webhook certificates not ready yet');
        await this.#sleep(retryInMs);
      }
    }
    if (this.#stopped) return;
    for (const watch of this.#watches) watch.start();
    this.#timer = setInterval(() => this.#request(), this.#options.resyncIntervalMs ?? DEFAULT_RESYNC_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#retryTimer);
    for (const watch of this.#watches) watch.stop();
    for (const wake of this.#sleepers) wake();
    await this.#chain;
  }

  /** One pass, after any pass already running. `force` renews even what is still fresh. */
  sync(force?: ForcedRenewal): Promise<SyncResult> {
    const run = this.#chain.then(() => {
      this.#queued = false;
      return this.#syncOnce(force);
    });
    this.#chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Forces a renewal: `serving` issues a new serving certificate, `ca` rotates the CA as well. */
  renew(kind: ForcedRenewal): Promise<SyncResult> {
    return this.sync(kind);
  }

  /** A pass because of a timer or an event; at most one waits at a time. */
  #request(): void {
    if (this.#stopped || this.#queued) return;
    this.#queued = true;
    this.sync().then(
      () => {
        this.#failures.reset();
      },
      (error: unknown) => {
        if (this.#stopped) return;
        const retryInMs = this.#failures.next();
        this.#logger.warn({ err: (error as Error).message, retryInMs }, 'webhook certificate check failed');
        clearTimeout(this.#retryTimer);
        this.#retryTimer = setTimeout(() => this.#request(), retryInMs);
        this.#retryTimer.unref();
      },
    );
  }

  async #syncOnce(force: ForcedRenewal | undefined): Promise<SyncResult> {
    for (let pass = 1; ; pass++) {
      const result = await this.#pass(force);
      if (result !== 'again') return result;
      // Whoever wrote in between renewed for us: a forced renewal is not repeated on top of theirs.
      force = undefined;
      if (this.#stopped) throw new Error('the certificate manager was stopped');
      if (pass >= MAX_PASSES) {
        throw new Error(`${this.#store.description} kept changing during the certificate check`);
      }
    }
  }

  async #pass(force: ForcedRenewal | undefined): Promise<SyncResult | 'again'> {
    const now = this.#now();
    let stored: StoredSecret | undefined = await this.#store.read();
    const plan = planCertificates(stored, now, this.#settings, force);
    let secret: SyncResult['secret'] = 'unchanged';
    if (plan.action !== 'keep') {
      const next = await this.#renewed(stored, plan, now);
      secret = stored ? 'replaced' : 'created';
      try {
        stored = await this.#store.write(next, stored?.resourceVersion);
      } catch (error) {
        if (!(error instanceof WriteConflict)) throw error;
        this.#logger.info(
          { secret: this.#store.description },
          'another replica wrote the webhook certificates first; using theirs',
        );
        return 'again';
      }
      this.#logger.info(
        {
          secret: this.#store.description,
          action: plan.action,
          reason: plan.reason,
          generation: stored.generation,
          serial: parseCertificate(next.contents.tlsCrt)?.serialNumber,
          expires: expiresAt(next.contents.tlsCrt)?.toISOString(),
          trustedCAs: splitPemCertificates(next.contents.caCrt).length,
        },
        'webhook certificates renewed',
      );
    }
    if (!stored) throw new Error('unreachable: a kept plan has a Secret');
    const contents = stored.contents as CertificateContents;

    const bundle = await this.#configuration.ensureCaBundle(contents.caCrt, stored.generation);
    this.#reportBundle(bundle, stored.generation);
    if (bundle.status === 'stale') {
      // The configuration holds the bundle of a newer generation than this Secret. Either a
      // writer got in after our read (the next pass reads its Secret), or the Secret went back
      // (deleted and recreated, restored from a backup): rewriting it with a higher generation
      // puts it ahead again.
      const fresh = await this.#store.read();
      if (fresh?.resourceVersion === stored.resourceVersion) {
        await this.#store
          .write({ ...stored, contents, generation: bundle.generation + 1 }, stored.resourceVersion)
          .catch((error: unknown) => {
            if (!(error instanceof WriteConflict)) throw error;
          });
      }
      return 'again';
    }

    const files = await this.#writeFiles(contents, bundle);
    if (files === 'stopped') return 'again';
    this.#servingNotAfter = expiresAt(contents.tlsCrt)?.getTime() ?? 0;
    this.#synced = true;
    return {
      generation: stored.generation,
      plan: plan.action,
      secret,
      bundle: bundle.status,
      files,
      servingSerial: parseCertificate(contents.tlsCrt)?.serialNumber ?? '',
    };
  }

  /** The Secret's next contents for `plan`. */
  async #renewed(
    stored: StoredSecret | undefined,
    plan: Exclude<CertificatePlan, { action: 'keep' }>,
    now: Date,
  ): Promise<StoredCertificates & { contents: CertificateContents }> {
    const options = this.#options;
    // Read what the configuration trusts: with no Secret, those CAs stay trusted for a while
    // (replicas may still serve certificates from them), and the generation continues from its.
    const trust = await this.#configuration.trust();
    let ca: PemPair;
    if (plan.action === 'rotate-ca') {
      ca = await createCertificateAuthority({
        commonName: `${options.commonName}-ca@${Math.floor(now.getTime() / 1000)}`,
        now,
        validityMs: options.caValidityMs,
      });
    } else {
      ca = { certPem: currentCa(stored?.contents) ?? '', keyPem: stored?.contents.caKey ?? '' };
    }
    const serving: PemPair =
      plan.action === 'prune-bundle'
        ? { certPem: stored?.contents.tlsCrt ?? '', keyPem: stored?.contents.tlsKey ?? '' }
        : await issueServingCertificate({
            ca,
            commonName: options.commonName,
            dnsNames: this.#settings.dnsNames,
            ipAddresses: this.#settings.ipAddresses,
            now,
            validityMs: options.certValidityMs,
          });
    const bundle = nextBundle({
      action: plan.action,
      ca: ca.certPem,
      stored,
      adopted: trust.bundles.flatMap((pem) => splitPemCertificates(pem)),
      adoptedRetentionMs: options.renewBeforeMs,
      now,
    });
    const next: StoredCertificates & { contents: CertificateContents } = {
      contents: { tlsCrt: serving.certPem, tlsKey: serving.keyPem, caCrt: bundle.caCrt, caKey: ca.keyPem },
      generation: Math.max(stored?.generation ?? 0, trust.generation) + 1,
    };
    if (bundle.retainUntil) next.retainUntil = bundle.retainUntil;
    return next;
  }

  async #writeFiles(
    contents: CertificateContents,
    bundle: BundleOutcome,
  ): Promise<SyncResult['files'] | 'stopped'> {
    const dir = this.#options.certDir;
    const onDisk = await readServingPair(dir);
    if (onDisk?.cert === contents.tlsCrt && onDisk.key === contents.tlsKey && onDisk.ca === contents.caCrt) {
      return 'unchanged';
    }
    // A serving certificate from another CA than the one served now, or a bundle this pass just
    // patched: the apiserver learns the bundle through its own watch, so give it a moment before
    // presenting a certificate only the new bundle verifies.
    const trustChanged =
      bundle.status === 'patched' || (onDisk !== undefined && !isIssuedBy(onDisk.cert, currentCa(contents)));
    if (trustChanged && bundle.status !== 'absent') {
      await this.#sleep(this.#options.propagationDelayMs ?? DEFAULT_PROPAGATION_MS);
      if (this.#stopped) return 'stopped';
    }
    await writeServingFiles(dir, {
      'tls.crt': contents.tlsCrt,
      'tls.key': contents.tlsKey,
      'ca.crt': contents.caCrt,
    });
    this.#logger.info(
      { certDir: dir, serial: parseCertificate(contents.tlsCrt)?.serialNumber },
      'serving certificate written',
    );
    return 'written';
  }

  #reportBundle(outcome: BundleOutcome, generation: number): void {
    const name = this.#configuration.name;
    if (outcome.status === 'patched') {
      this.#logger.info({ configuration: name, generation, webhooks: outcome.webhooks }, 'CA bundle patched');
    } else if (outcome.status === 'absent' && this.#lastBundleStatus !== 'absent') {
      this.#logger.warn(
        { configuration: name },
        'MutatingWebhookConfiguration not found; its CA bundle is set once it exists',
      );
    }
    this.#lastBundleStatus = outcome.status;
  }

  /** A delay that stop() cuts short. */
  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }
}
