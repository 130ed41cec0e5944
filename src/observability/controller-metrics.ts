// Controller metrics under the names controller-runtime and client-go export, so dashboards and
// alerts written for Go operators work unchanged: workqueue_* (label `name`),
// controller_runtime_* (label `controller`) and leader_election_master_status (label `name`).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What a work queue reports at scrape time about the items it is processing right now. */
export interface InFlightWork {
  readonly name: string;
  /** Seconds each in-flight item has been processing so far. */
  inFlightSeconds(): number[];
}

export type ReconcileResultLabel = 'success' | 'error' | 'requeue' | 'requeue_after';
export const RECONCILE_RESULTS: readonly ReconcileResultLabel[] = [
  'success',
  'error',
  'requeue',
  'requeue_after',
];

export interface ControllerMetrics {
  workqueue: {
    depth: Gauge<'name'>;
    adds: Counter<'name'>;
    queueDuration: Histogram<'name'>;
    workDuration: Histogram<'name'>;
    retries: Counter<'name'>;
    unfinishedWork: Gauge<'name'>;
    longestRunningProcessor: Gauge<'name'>;
  };
  reconcileTotal: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  reconcileTime: Histogram<'controller'>;
  maxConcurrentReconciles: Gauge<'controller'>;
  activeWorkers: Gauge<'controller'>;
  leaderElectionMasterStatus: Gauge<'name'>;
  /** Federated credentials the sweep found orphaned, by what it did: deleted or retained. */
  orphanedCredentials: Counter<'action'>;
  /** Queues register here so the two "unfinished work" gauges can be computed at scrape time. */
  trackInFlight(work: InFlightWork): () => void;
}

// client-go's workqueue buckets: 10 ns to 1000 s by decades, since queue waits and work times
// span from microseconds (an idle queue) to many minutes (backoff at its cap).
const WORKQUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);
// controller-runtime's reconcile_time_seconds buckets.
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25,
  1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

// One set per registry: prom-client refuses a second registration of a name, and the leader
// elector and every queue of the process share the same registry.
const byRegistry = new WeakMap<Registry, ControllerMetrics>();

export function createControllerMetrics(registry: Registry): ControllerMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;

  const inFlight = new Set<InFlightWork>();
  const registers = [registry];
  const metrics: ControllerMetrics = {
    workqueue: {
      depth: new Gauge({
        name: 'workqueue_depth',
        help: 'Current depth of workqueue',
        labelNames: ['name'],
        registers,
      }),
      adds: new Counter({
        name: 'workqueue_adds_total',
        help: 'Total number of adds handled by workqueue',
        labelNames: ['name'],
        registers,
      }),
      queueDuration: new Histogram({
        name: 'workqueue_queue_duration_seconds',
        help: 'How long in seconds an item stays in workqueue before being requested',
        labelNames: ['name'],
        buckets: WORKQUEUE_BUCKETS,
        registers,
      }),
      workDuration: new Histogram({
        name: 'workqueue_work_duration_seconds',
        help: 'How long in seconds processing an item from workqueue takes.',
        labelNames: ['name'],
        buckets: WORKQUEUE_BUCKETS,
        registers,
      }),
      retries: new Counter({
        name: 'workqueue_retries_total',
        help: 'Total number of retries handled by workqueue',
        labelNames: ['name'],
        registers,
      }),
      unfinishedWork: new Gauge({
        name: 'workqueue_unfinished_work_seconds',
        help:
          'How many seconds of work has been done that is in progress and has not been observed by ' +
          'work_duration. Large values indicate stuck threads.',
        labelNames: ['name'],
        registers,
        collect() {
          for (const work of inFlight) {
            this.set(
              { name: work.name },
              work.inFlightSeconds().reduce((sum, s) => sum + s, 0),
            );
          }
        },
      }),
      longestRunningProcessor: new Gauge({
        name: 'workqueue_longest_running_processor_seconds',
        help: 'How many seconds has the longest running processor for workqueue been running.',
        labelNames: ['name'],
        registers,
        collect() {
          for (const work of inFlight) {
            this.set({ name: work.name }, Math.max(0, ...work.inFlightSeconds()));
          }
        },
      }),
    },
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: RECONCILE_BUCKETS,
      registers,
    }),
    maxConcurrentReconciles: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    }),
    leaderElectionMasterStatus: new Gauge({
      name: 'leader_election_master_status',
      help:
        'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, ' +
        "1 indicates master. 'name' is the string used to identify the lease.",
      labelNames: ['name'],
      registers,
    }),
    orphanedCredentials: new Counter({
      name: 'entra_access_orphaned_federated_credentials_total',
      help:
        'Federated identity credentials named by this cluster that no resource owns, by action: ' +
        'deleted by the sweep, or retained (left by deletionPolicy Orphan).',
      labelNames: ['action'],
      registers,
    }),
    trackInFlight(work) {
      inFlight.add(work);
      return () => {
        inFlight.delete(work);
        // A stopped queue has no work in progress; leave no stale value behind for scrapes.
        metrics.workqueue.unfinishedWork.set({ name: work.name }, 0);
        metrics.workqueue.longestRunningProcessor.set({ name: work.name }, 0);
      };
    },
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
