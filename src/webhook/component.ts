// The webhook component, wired: caches, handlers, the HTTPS server with its reloadable certificate.
// Every replica runs it. Ready once the certificate is loaded and the caches have synced.
// With --cert-mode=self the component first brings its certificates from the Secret into
// --cert-dir (creating them if no replica has yet) and keeps them renewed; otherwise --cert-dir is
// filled by someone else, e.g. cert-manager.
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type * as k8s from '@kubernetes/client-node';
import type { Config } from '../config.ts';
import { EventRecorder, type EventSink } from '../kube/events.ts';
import { closeServer, type ReadinessCheck } from '../observability/http-servers.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import {
  CertificateManager,
  type CertificateManagerOptions,
  certificateManagerOptions,
} from './certificates/manager.ts';
import { createHandlers } from './handlers.ts';
import { createLookups, type Lookups } from './lookups.ts';
import { createWebhookApp, createWebhookServer } from './server.ts';
import { CertificateWatcher } from './tls.ts';

export interface WebhookComponent {
  /** The bound HTTPS port once started (useful when tests pick a free one). */
  readonly port: number;
  /** Known before start, so /readyz can report the component as not ready while it starts. */
  readiness: ReadinessCheck[];
  /** With --cert-mode=self, the manager of the serving certificates. */
  readonly certificateManager: CertificateManager | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface WebhookComponentDeps {
  kubeConfig: k8s.KubeConfig;
  logger: Logger;
  metrics: Metrics;
  events?: EventSink;
  lookups?: Lookups;
  /**
   * With --cert-mode=self, overrides of the certificate manager's options. Tests use it to add
   * an IP address (they register the webhook by URL at 127.0.0.1) and to shorten its delays.
   */
  certificateOptions?: Partial<CertificateManagerOptions>;
}

export function createWebhookComponent(config: Config, deps: WebhookComponentDeps): WebhookComponent {
  // The log field naming the component stays `role`, as the controller's does: `component` is the
  // logger's base field, the program's name (src/observability/logger.ts).
  const logger = deps.logger.child({ role: 'webhook' });
  const lookups = deps.lookups ?? createLookups(deps.kubeConfig, logger);
  const events = deps.events ?? new EventRecorder(deps.kubeConfig, logger);
  const certificates = new CertificateWatcher(config.certDir, logger);
  const manager =
    config.certificates.mode === 'self'
      ? new CertificateManager(
          certificateManagerOptions(config, { kubeConfig: deps.kubeConfig, logger }, deps.certificateOptions),
        )
      : undefined;
  const handlers = createHandlers({
    lookups,
    events,
    logger,
    settings: {
      ownNamespace: config.namespace,
      injectionMode: config.injectionMode,
      extraPodLabels: config.extraPodLabels,
      tenantId: config.tenantId,
      authorityHost: config.authorityHost,
    },
  });
  const app = createWebhookApp({
    handlers,
    metrics: deps.metrics.webhook,
    logger,
    maxRequestBytes: config.webhookMaxRequestBytes,
  });
  let server: Server | undefined;
  let stopping = false;
  let synced: Promise<void> | undefined;
  let port = 0;

  return {
    get port() {
      return port;
    },
    certificateManager: manager,
    readiness: [
      ...(manager ? [{ name: 'webhook-certificate-secret', ready: () => manager.ready }] : []),
      { name: 'webhook-certificate', ready: () => certificates.loaded && server !== undefined },
      { name: 'webhook-caches', ready: () => lookups.synced },
    ],
    async start() {
      // Caches sync in the background: until they have, /readyz says so and the Service sends no traffic.
      synced = lookups.start().catch((error: unknown) => {
        logger.error({ err: (error as Error).message }, 'caches failed to start');
      });
      // Mode self: the Secret's pair is in --cert-dir before the watcher looks for it.
      await manager?.start();
      if (stopping) return;
      await certificates.start();
      const https = createWebhookServer(app, certificates);
      await new Promise<void>((resolve, reject) => {
        https.once('error', reject);
        https.listen(config.webhookPort, config.bindAddress, () => resolve());
      });
      server = https;
      port = (https.address() as AddressInfo).port;
      logger.info(
        {
          port,
          certDir: config.certDir,
          certMode: config.certificates.mode,
          injectionMode: config.injectionMode,
        },
        'webhook serving',
      );
    },
    async stop() {
      stopping = true;
      await manager?.stop();
      certificates.stop();
      await closeServer(server);
      await lookups.stop();
      await synced;
    },
  };
}

export async function startWebhookComponent(
  config: Config,
  deps: WebhookComponentDeps,
): Promise<WebhookComponent> {
  const component = createWebhookComponent(config, deps);
  await component.start();
  return component;
}
