// The controller component, wired: informer caches and the indexes fed from them, work queues for
// servers and access resources, the Azure and PostgreSQL layers, the sweep of orphaned federated
// credentials, and the namespace label backfill. Runs only on the leader.
import * as k8s from '@kubernetes/client-node';
import { type Binding, BindingIndex, bindingOf } from '../api/binding-index.ts';
import {
  ACCESS_KIND,
  FINALIZER,
  NAMESPACE_OPT_IN_ANNOTATION,
  NAMESPACE_OPT_IN_LABEL,
  OPT_IN_VALUE,
} from '../api/constants.ts';
import type { EntraDatabaseAccess } from '../api/types.ts';
import { cloudSettings } from '../azure/cloud.ts';
import { createOperatorCredential, TokenSource } from '../azure/credentials.ts';
import { ManagedIdentities } from '../azure/managed-identities.ts';
import type { Config } from '../config.ts';
import { accessCache, namespaceCache, serverCache } from '../kube/caches.ts';
import { EventRecorder } from '../kube/events.ts';
import { createControllerMetrics } from '../observability/controller-metrics.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { PostgresDatabase } from './database.ts';
import { claimOf, DatabaseRoleIndex, type RoleClaim } from './database-role-index.ts';
import { needsReconcile, relationsChanged, waitsForFicRoom } from './event-filters.ts';
import { FederatedCredentialSweeper } from './federated-credential-sweeper.ts';
import { namespaceView } from './guards/binding-rules.ts';
import { databaseAccessKind } from './kinds/database-access.ts';
import { LeaderElector } from './leader-election.ts';
import { createObjectReconciler } from './reconcile/object-reconciler.ts';
import { createServerReconciler } from './server-reconciler.ts';
import { type BackoffOptions, WorkQueue } from './workqueue.ts';

/**
 * Retry backoff of a failed reconcile of an access resource: 1 s, doubling, at most 5 minutes.
 * controller-runtime's 5 ms start suits a controller that only talks to its apiserver; a reconcile
 * here reads ARM, where Azure allows one LIST of an identity per 4 s and one GET per 2 s: ten
 * retries within the first 5 s (5 ms, 10 ms, … 2.6 s) could only wait for their paced reads or earn
 * 429s, and failures that go away (a status write that lost a race, a database connection being
 * re-established, a FIC not yet propagated) need about a second, not milliseconds. A failure that
 * asks for a wait (Azure's Retry-After) still sets its own floor. The cap is 5 minutes rather than
 * 1,000 s: a resource broken for long is looked at again well before its resync, and each look
 * costs at most one paced LIST of its identity.
 */
export const ACCESS_RETRY_BACKOFF: Required<BackoffOptions> = { baseDelayMs: 1_000, maxDelayMs: 300_000 };

export interface ControllerComponent {
  /** ARM requests made so far (reads, writes, throttled, conflicts). */
  armStats(): ReturnType<ManagedIdentities['stats']['snapshot']>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves when leadership was lost; the process should then exit, as controller-runtime's does. */
  readonly lostLeadership: Promise<void>;
}

export interface ControllerComponentDeps {
  kubeConfig: k8s.KubeConfig;
  logger: Logger;
  metrics: Metrics;
  /** Options for the Azure SDK clients (tests pass tlsOptions for the emulator's CA). */
  azureClientOptions?: Record<string, unknown>;
  /** Where the operator's workload-identity variables are read from; default process.env. */
  azureEnv?: NodeJS.ProcessEnv;
}

/** The label the namespace webhook would have set, when the controller sees it missing or stale. */
export function wantedOptInLabel(namespace: k8s.V1Namespace): string | null | undefined {
  const annotated = namespace.metadata?.annotations?.[NAMESPACE_OPT_IN_ANNOTATION] === OPT_IN_VALUE;
  const label = namespace.metadata?.labels?.[NAMESPACE_OPT_IN_LABEL];
  if (annotated && label !== OPT_IN_VALUE) return OPT_IN_VALUE;
  if (!annotated && label !== undefined) return null; // merge patch: remove
  return undefined; // already right
}

export function createControllerComponent(
  config: Config,
  deps: ControllerComponentDeps,
): ControllerComponent {
  const logger = deps.logger.child({ role: 'controller' });
  const kc = deps.kubeConfig;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const controllerMetrics = createControllerMetrics(deps.metrics.registry);
  const events = new EventRecorder(kc, logger);
  const cloud = cloudSettings(config.azureCloud, {
    authorityHost: config.authorityHost,
    ...(config.controller.armEndpoint ? { armEndpoint: config.controller.armEndpoint } : {}),
    ...(config.controller.postgresTokenScope ? { postgresScope: config.controller.postgresTokenScope } : {}),
  });
  const credentialOptions = deps.azureClientOptions ? { credentialOptions: deps.azureClientOptions } : {};
  const createCredential = () =>
    createOperatorCredential({
      cloud,
      ...credentialOptions,
      ...(deps.azureEnv ? { env: deps.azureEnv } : {}),
    });
  const azure = new ManagedIdentities({
    credential: createCredential,
    cloud,
    ...(deps.azureClientOptions ? { clientOptions: deps.azureClientOptions } : {}),
  });
  const tokenSources = new Map<string, TokenSource>();
  const tokensFor = (scope: string): TokenSource => {
    let source = tokenSources.get(scope);
    if (!source) {
      source = new TokenSource({ createCredential, postgresScope: scope });
      tokenSources.set(scope, source);
    }
    return source;
  };
  const database = new PostgresDatabase({ core, tokensFor, defaultScope: cloud.postgresScope, logger });

  const accesses = accessCache(kc, logger);
  const servers = serverCache(kc, logger);
  const namespaces = namespaceCache(kc, logger);
  // Who binds what, across kinds, and which PostgreSQL role names each access involves: fed from
  // the cache's events, read by the admission rules, the steps, the sweep and the enqueueing.
  const bindings = new BindingIndex();
  const roles = new DatabaseRoleIndex();
  const settings = {
    clusterName: config.controller.clusterName,
    issuer: config.controller.oidcIssuerUrl,
    postgresScope: cloud.postgresScope,
    operator: { clientId: (deps.azureEnv ?? process.env).AZURE_CLIENT_ID },
  };

  const resyncMs = config.controller.resyncPeriodSeconds * 1000;
  const accessQueue = new WorkQueue({
    name: 'entradatabaseaccess',
    concurrency: config.controller.maxConcurrentReconciles,
    backoff: ACCESS_RETRY_BACKOFF,
    metrics: controllerMetrics,
    logger,
    process: createObjectReconciler(
      databaseAccessKind({
        core,
        accesses,
        servers,
        namespaces,
        bindings,
        roles,
        azure,
        database,
        settings,
      }),
      { custom, events, logger, resyncMs },
    ),
  });
  const serverQueue = new WorkQueue({
    name: 'entradatabaseserver',
    concurrency: 2,
    metrics: controllerMetrics,
    logger,
    process: createServerReconciler({ custom, servers, database, events, logger, resyncMs }),
  });
  const sweeper = new FederatedCredentialSweeper({
    azure,
    core,
    bindings,
    clusterName: settings.clusterName,
    issuer: settings.issuer,
    logger,
    metrics: controllerMetrics,
  });
  azure.onFederatedCredentialsListed = (identity, fics) => sweeper.observe(identity, fics);
  // A FIC the operator deleted (a resource gone, a ServiceAccount or identity changed, an orphan
  // swept) frees a slot on its identity: the resources refused at the 20-FIC limit there try again
  // now instead of at their next resync.
  azure.onFederatedCredentialDeleted = (identity) => {
    for (const binding of bindings.onIdentity(identity)) {
      if (binding.kind !== ACCESS_KIND) continue;
      accesses.get(binding.name, binding.namespace).then(
        (access) => {
          if (waitsForFicRoom(access, identity)) accessQueue.add(keyOf(binding));
        },
        () => {},
      );
    }
  };

  const keyOf = (a: { namespace: string; name: string }) => `${a.namespace}/${a.name}`;
  /**
   * The access resources whose admission verdict a change to one binding/claim can change:
   * another identity's claims on the same ServiceAccount or role names. Everything else is left
   * alone: a delete re-queued every access on the server before (27 reconciles per change at
   * 200 resources), and re-queueing the sharers of an identity still cost 5.7.
   */
  const enqueueContenders = (binding: Binding | undefined, claim: RoleClaim | undefined) => {
    if (binding)
      for (const other of bindings.contenders(binding))
        if (other.kind === binding.kind) accessQueue.add(keyOf(other));
    if (claim) for (const other of roles.contenders(claim)) accessQueue.add(keyOf(other));
  };
  const onAccess = (access: EntraDatabaseAccess) => {
    const namespace = access.metadata.namespace ?? '';
    const name = access.metadata.name ?? '';
    const binding = bindingOf(access, ACCESS_KIND);
    const before = binding ? bindings.set(binding) : bindings.delete(ACCESS_KIND, namespace, name);
    const claimBefore = roles.set(access);
    const claim = claimOf(access);
    if (needsReconcile(before, binding, access.metadata.finalizers?.includes(FINALIZER) ?? false))
      accessQueue.add(keyOf({ namespace, name }));
    if (relationsChanged({ binding: before, claim: claimBefore }, { binding, claim })) {
      enqueueContenders(before, claimBefore);
      enqueueContenders(binding, claim);
    }
  };
  accesses.on('add', onAccess);
  accesses.on('update', onAccess);
  accesses.on('delete', (access) => {
    const namespace = access.metadata.namespace ?? '';
    const name = access.metadata.name ?? '';
    const binding = bindings.delete(ACCESS_KIND, namespace, name) ?? bindingOf(access, ACCESS_KIND);
    const claim = roles.delete(namespace, name) ?? claimOf(access);
    enqueueContenders(binding, claim);
  });
  servers.on('add', (s) => serverQueue.add(s.metadata.name ?? ''));
  servers.on('update', (s) => {
    serverQueue.add(s.metadata.name ?? '');
    for (const claim of roles.onServer(s.metadata.name ?? '')) accessQueue.add(keyOf(claim));
  });
  /** What the admission rules read of each namespace, to re-queue its accesses only when it changes. */
  const namespaceViews = new Map<string, string>();
  const onNamespace = (ns: k8s.V1Namespace) => {
    const name = ns.metadata?.name ?? '';
    const view = JSON.stringify(namespaceView(ns));
    if (namespaceViews.get(name) !== view) {
      namespaceViews.set(name, view);
      for (const a of accesses.list(name))
        accessQueue.add(keyOf({ namespace: name, name: a.metadata.name ?? '' }));
    }
    // Backfill: namespaces annotated before the webhook ran (or while it was down) get the label.
    const label = wantedOptInLabel(ns);
    if (label === undefined || name === config.namespace) return;
    core
      .patchNamespace(
        { name, body: { metadata: { labels: { [NAMESPACE_OPT_IN_LABEL]: label } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )
      .then(
        () => logger.info({ kind: 'Namespace', name, label }, 'repaired opt-in label'),
        (error: Error) =>
          logger.warn({ kind: 'Namespace', name, err: error.message }, 'could not repair opt-in label'),
      );
  };
  namespaces.on('add', onNamespace);
  namespaces.on('update', onNamespace);
  namespaces.on('delete', (ns) => namespaceViews.delete(ns.metadata?.name ?? ''));

  let resolveLost: () => void = () => {};
  /** stop() was called: leadership then ends because we give it up, which is not a loss. */
  let stopping = false;
  const lostLeadership = new Promise<void>((resolve) => {
    resolveLost = resolve;
  });
  const elector = config.controller.leaderElect
    ? new LeaderElector({
        kubeConfig: kc,
        namespace: config.controller.leaderElectionNamespace,
        name: config.controller.leaderElectionId,
        timings: {
          leaseDurationMs: config.controller.leaderElectionLeaseDurationSeconds * 1000,
          renewDeadlineMs: Math.round(config.controller.leaderElectionRenewDeadlineSeconds * 1000),
          retryPeriodMs: Math.round(config.controller.leaderElectionRetryPeriodSeconds * 1000),
        },
        logger,
        metrics: controllerMetrics,
      })
    : undefined;

  const run = async (): Promise<void> => {
    await Promise.all([servers.start(), namespaces.start(), accesses.start()]);
    serverQueue.start();
    accessQueue.start();
    sweeper.start();
    logger.info({ accesses: accesses.list().length, servers: servers.list().length }, 'controller running');
  };

  return {
    armStats: () => azure.stats.snapshot(),
    lostLeadership,
    async start() {
      if (!elector) {
        await run();
        return;
      }
      void elector.run({
        onStartedLeading: () => run(),
        // Only an involuntary loss: on stop() the caller is already shutting down, and must get
        // to release the lease (so a standby takes over at once) rather than exit mid-stop.
        onStoppedLeading: () => {
          if (!stopping) resolveLost();
        },
      });
    },
    async stop() {
      stopping = true;
      await Promise.all([accessQueue.shutdown(), serverQueue.shutdown(), sweeper.stop()]);
      await elector?.stop();
      await Promise.all([accesses.stop(), servers.stop(), namespaces.stop()]);
      await database.end();
    },
  };
}
