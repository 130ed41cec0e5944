#!/usr/bin/env node
// entra-access: `entra-access <command> [flags]`. Commands and the option groups each accepts are
// in src/config.ts (COMMANDS); START below says how each starts. `run` starts the components
// asked for: the webhook (every replica) and the controller (the elected leader). Wiring only:
// configuration, logger, metrics, servers, signals.
//
// Only config.ts is imported up front: a command's modules load when it starts, so a command
// that needs no Kubernetes client, express or ARM SDK (the coming `entra-access proxy`) never
// loads them.

import type { Server } from 'node:http';
import {
  COMMANDS,
  type CommandConfig,
  type CommandName,
  type Config,
  ConfigError,
  help,
  isCommandName,
  parseCommand,
  usage,
} from './config.ts';
import type { ReadinessCheck } from './observability/http-servers.ts';

/** How each command starts, given its parsed configuration. */
const START: { [C in CommandName]: (config: CommandConfig<C>) => Promise<void> } = {
  run: startRun,
};

/** `entra-access run`: the components asked for, the health and metrics servers, signal handling. */
async function startRun(config: Config): Promise<void> {
  const [
    { loadKubeConfig },
    { closeServer, startHealthServer, startMetricsServer },
    { createLogger },
    { createMetrics },
  ] = await Promise.all([
    import('./kube/client.ts'),
    import('./observability/http-servers.ts'),
    import('./observability/logger.ts'),
    import('./observability/metrics.ts'),
  ]);
  const logger = createLogger(config.logLevel);
  const metrics = createMetrics();
  const kubeConfig = loadKubeConfig(config.kubeconfig);
  logger.info(
    { components: config.components, namespace: config.namespace, certMode: config.certificates.mode },
    'starting entra-access',
  );

  // Each component's readiness checks are registered before it starts, so /readyz reports it as
  // not ready (and why) until its certificate is loaded and its caches have synced.
  const webhook = config.components.includes('webhook')
    ? (await import('./webhook/component.ts')).createWebhookComponent(config, { kubeConfig, logger, metrics })
    : undefined;
  const readiness: ReadinessCheck[] = [...(webhook?.readiness ?? [])];
  const servers: Server[] = [];
  // Health first, so liveness answers while the components start.
  if (config.healthPort > 0)
    servers.push(await startHealthServer(config.healthPort, config.bindAddress, readiness));
  if (config.metricsPort > 0) {
    servers.push(await startMetricsServer(config.metricsPort, config.bindAddress, metrics.registry));
  }
  await webhook?.start();
  const controller = config.components.includes('controller')
    ? (await import('./controller/component.ts')).createControllerComponent(config, {
        kubeConfig,
        logger,
        metrics,
      })
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

/** `entra-access <command>`: a command's configuration, then its start; help; or a ConfigError. */
async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(`${help()}\n`);
    return;
  }
  if (command === 'help') {
    const topic = rest[0];
    process.stdout.write(`${topic === undefined ? help() : usage(commandNamed(topic))}\n`);
    return;
  }
  const name = commandNamed(command);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${usage(name)}\n`);
    return;
  }
  await start(name, rest);
}

function commandNamed(command: string): CommandName {
  if (isCommandName(command)) return command;
  const names = [...Object.keys(COMMANDS), 'help'].map((name) => `"${name}"`).join(', ');
  throw new ConfigError(`unknown command "${command}"; the commands are ${names}`);
}

async function start<C extends CommandName>(name: C, argv: string[]): Promise<void> {
  const run: (config: CommandConfig<C>) => Promise<void> = START[name];
  await run(parseCommand(name, argv, process.env));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`entra-access: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`entra-access: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
