// Entry point: `node test/harness/azure-emulator/main.ts <config.json>`.
// Prints exactly one line, {"ready":true,"port":N,"blobPort":B,"postgresPort":M,"wellKnown":…}, on stdout once listening (launchers wait for
// it); everything else goes to stderr. Exits cleanly on SIGTERM/SIGINT.
import { loadConfig } from './config.ts';
import { startEmulator } from './server.ts';

async function main(): Promise<void> {
  const configFile = process.argv[2];
  if (!configFile) throw new Error('usage: main.ts <config.json>');
  const emulator = await startEmulator(loadConfig(configFile));
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    emulator.close().then(
      () => process.exit(0),
      (error: Error) => {
        process.stderr.write(`azure-emulator: error while stopping on ${signal}: ${error.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.stdout.write(
    `${JSON.stringify({ ready: true, port: emulator.port, blobPort: emulator.blobPort, postgresPort: emulator.postgresPort, wellKnown: emulator.wellKnown })}\n`,
  );
}

main().catch((error: Error) => {
  process.stderr.write(`azure-emulator: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
