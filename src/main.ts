#!/usr/bin/env node
// entra-access: `entra-access run [flags]` starts the roles asked for: the webhook (every
// replica) and the controller (the elected leader). Wiring only: configuration, logger, metrics,
// servers, signals.
import type { Server } from 'node:http';
import { ConfigError, parseConfig, usage } from './config.ts';
import { createControllerComponent } from './controller/component.ts';
import { loadKubeConfig } from './kube/client.ts';
import {
  closeServer,
  type ReadinessCheck,
  startHealthServer,
  startMetricsServer,
} from './observability/http-servers.ts';
import { createLogger } from './observability/logger.ts';
import { createMetrics } from './observability/metrics.ts';
import { createWebhookComponent } from './webhook/component.ts';

async function run(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const config = parseConfig(argv, process.env);
  const logger = createLogger(config.logLevel);
  const metrics = createMetrics();
  const kubeConfig = loadKubeConfig(config.kubeconfig);
  logger.info(
    { roles: config.roles, namespace: config.namespace, certMode: config.certificates.mode },
    'starting entra-access',
  );

  // Each role's readiness checks are registered before it starts, so /readyz reports it as not
  // ready (and why) until its certificate is loaded and its caches have synced.
  const webhook = config.roles.includes('webhook')
    ? createWebhookComponent(config, { kubeConfig, logger, metrics })
    : undefined;
  const readiness: ReadinessCheck[] = [...(webhook?.readiness ?? [])];
  const servers: Server[] = [];
  // Health first, so liveness answers while the roles start.
  if (config.healthPort > 0)
    servers.push(await startHealthServer(config.healthPort, config.bindAddress, readiness));
  if (config.metricsPort > 0) {
    servers.push(await startMetricsServer(config.metricsPort, config.bindAddress, metrics.registry));
  }
  await webhook?.start();
  const controller = config.roles.includes('controller')
    ? createControllerComponent(config, { kubeConfig, logger, metrics })
    : undefined;
  await controller?.start();
  // As controller-runtime does: a replica that lost its lease exits and restarts as a candidate,
  // rather than risk two controllers writing at once.
  let stopping = false;
  void controller?.lostLeadership.then(() => {
    // A shutdown under way releases the lease itself; exiting here would cut it short.
    if (stopping) return;
    logger.error('lost leader election; exiting');
    process.exit(1);
  });

  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await controller?.stop();
    await webhook?.stop();
    await Promise.all(servers.map((server) => closeServer(server)));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'run') return run(rest);
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(
      `entra-access: Entra Workload ID and Entra PostgreSQL access for AKS\n\n${usage()}\n`,
    );
    return;
  }
  throw new ConfigError(`unknown command "${command}"; the command is "run"`);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`entra-access: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`entra-access: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
