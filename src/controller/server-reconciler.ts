// Reconciles one EntraDatabaseServer: connect as the operator's Entra admin role with a token,
// check that Azure's Entra functions are there, and report Ready and the server version.
import * as k8s from '@kubernetes/client-node';
import { ConditionType, GROUP, Reason, SERVER_PLURAL, VERSION } from '../api/constants.ts';
import type { EntraDatabaseServer, EntraDatabaseServerStatus } from '../api/types.ts';
import { statusOf } from '../kube/client.ts';
import { conditionsEqual, setCondition } from '../kube/conditions.ts';
import type { EventSink } from '../kube/events.ts';
import type { InformerCache } from '../kube/informer-cache.ts';
import type { Logger } from '../observability/logger.ts';
import { type BackoffPolicy, exponentialDelayMs, KeyedBackoff } from '../util/backoff.ts';
import type { ReconcileResult } from './workqueue.ts';

export interface ServerProbe {
  /** Connects as spec.adminRole and reads the version and whether pgaadauth_list_principals exists. */
  probe(server: EntraDatabaseServer): Promise<{ version: string; entraFunctions: boolean }>;
}

export interface ServerReconcilerDeps {
  custom: k8s.CustomObjectsApi;
  servers: InformerCache<EntraDatabaseServer>;
  database: ServerProbe;
  events: EventSink;
  logger: Logger;
  resyncMs: number;
  now?: () => Date;
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/**
 * Every access resource on a server waits for it (ServerNotReady): a failed probe is retried soon
 * after a short outage (an Entra or PostgreSQL restart), and no more than twice a minute in a long
 * one.
 */
const SERVER_RETRY: BackoffPolicy = { baseDelayMs: 1000, maxDelayMs: 30_000 };

/** The retry after the `failed`-th probe failure in a row: 1 s, 2 s, 4 s, … up to 30 s. */
export function serverRetryMs(failed: number): number {
  return exponentialDelayMs(failed - 1, SERVER_RETRY);
}

export function createServerReconciler(
  deps: ServerReconcilerDeps,
): (key: string) => Promise<ReconcileResult> {
  const now = deps.now ?? (() => new Date());
  /** Failed probes in a row, per server: the retry after each is serverRetryMs of their count. */
  const failures = new KeyedBackoff(SERVER_RETRY);
  return async function reconcile(name: string): Promise<ReconcileResult> {
    const server = await deps.servers.get(name);
    if (!server || server.metadata.deletionTimestamp) {
      failures.forget(name);
      return {};
    }
    const generation = server.metadata.generation ?? 0;
    let ready: { status: 'True' | 'False'; reason: string; message: string };
    let version = server.status?.serverVersion;
    let retry = deps.resyncMs;
    try {
      const probe = await deps.database.probe(server);
      failures.forget(name);
      version = probe.version;
      ready = probe.entraFunctions
        ? {
            status: 'True',
            reason: Reason.Connected,
            message: `connected as ${server.spec.adminRole} with an Entra token`,
          }
        : {
            status: 'False',
            reason: Reason.EntraAuthUnavailable,
            message: `connected, but pgaadauth_list_principals does not exist: enable Microsoft Entra authentication on the server and make ${server.spec.adminRole} an Entra administrator`,
          };
    } catch (error) {
      retry = failures.when(name);
      ready = {
        status: 'False',
        reason: Reason.DatabaseRequestFailed,
        message: `cannot connect to ${server.spec.host} as ${server.spec.adminRole}: ${(error as Error).message}`,
      };
    }
    const conditions = setCondition(
      server.status?.conditions,
      { type: ConditionType.Ready, ...ready },
      generation,
      now(),
    );
    const status: EntraDatabaseServerStatus = {
      ...server.status,
      conditions,
      observedGeneration: generation,
    };
    if (version) status.serverVersion = version;
    const changed =
      !conditionsEqual(server.status?.conditions, conditions) ||
      server.status?.serverVersion !== status.serverVersion ||
      server.status?.observedGeneration !== generation;
    if (changed) {
      if (ready.status === 'False') {
        deps.events.warning(
          { apiVersion: `${GROUP}/${VERSION}`, kind: 'EntraDatabaseServer', name, namespace: 'default' },
          ready.reason,
          ready.message,
        );
      }
      try {
        await deps.custom.patchClusterCustomObjectStatus(
          { group: GROUP, version: VERSION, plural: SERVER_PLURAL, name, body: { status } },
          mergePatch,
        );
      } catch (error) {
        // Deleted while it was probed: nothing to report on, and no error.
        if (statusOf(error) === 404) return {};
        throw error;
      }
      deps.logger.info(
        { kind: 'EntraDatabaseServer', name, ready: ready.status, reason: ready.reason },
        'server status',
      );
    }
    return { requeueAfterMs: retry };
  };
}
