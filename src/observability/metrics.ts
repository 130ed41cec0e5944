// Prometheus metrics with the names users know from controller-runtime, plus entra-access's own.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface WebhookMetrics {
  latency: Histogram<'webhook'>;
  requests: Counter<'webhook' | 'code'>;
  inFlight: Gauge<'webhook'>;
  mutations: Counter<'kind' | 'outcome'>;
}

export interface Metrics {
  registry: Registry;
  webhook: WebhookMetrics;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const webhook: WebhookMetrics = {
    latency: new Histogram({
      name: 'controller_runtime_webhook_latency_seconds',
      help: 'Histogram of the latency of processing admission requests',
      labelNames: ['webhook'],
      // Admission is expected to take about a millisecond; resolve that range finely.
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'controller_runtime_webhook_requests_total',
      help: 'Total number of admission requests by HTTP status code.',
      labelNames: ['webhook', 'code'],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'controller_runtime_webhook_requests_in_flight',
      help: 'Current number of admission requests being served.',
      labelNames: ['webhook'],
      registers: [registry],
    }),
    mutations: new Counter({
      name: 'entra_access_webhook_mutations_total',
      help: 'Admission decisions by object kind and outcome (patched, unchanged, denied, error).',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
  };
  return { registry, webhook };
}
