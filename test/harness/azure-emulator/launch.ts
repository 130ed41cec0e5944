// Starts the emulator as a separate Node process, managed like every other harness part
// (own process group, output in <dir>/azure-emulator.log, reaped by the guardian).
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess } from '../processes.ts';
import { AzureEmulatorClient } from './client.ts';
import type { EmulatorConfig } from './config.ts';

const mainScript = fileURLToPath(new URL('./main.ts', import.meta.url));

export interface StartAzureEmulatorOptions {
  /** Where azure-emulator.json and azure-emulator.log are written. */
  dir: string;
  /** The test CA: the emulator trusts it (to fetch issuer keys) and so does the returned client. */
  caFile: string;
  certFile: string;
  keyFile: string;
  tenantId: string;
  /** Front this PostgreSQL as Azure would (see postgres-gateway.ts). */
  postgres?: { adminUrl: string; upstreamSocket: string };
  /** Node 24 binary; defaults to the one running this process. */
  nodePath?: string;
  /** Also answer as the public cloud's authority hosts on `host`:443 (config.ts `wellKnown`). */
  wellKnown?: { host: string; certFile: string; keyFile: string };
}

export interface AzureEmulator {
  url: string;
  port: number;
  /** The Blob data plane, path-style: `${blobUrl}/{account}/{container}/{blob}`. */
  blobUrl: string;
  /** Where clients log in to PostgreSQL with Entra tokens, when `postgres` was given. */
  postgresPort: number | undefined;
  client: AzureEmulatorClient;
  /** Where it answers as the well-known authority hosts, or why it does not. */
  wellKnown: { host: string } | { error: string } | undefined;
  stop(): Promise<void>;
}

interface ReadyLine {
  ready: true;
  port: number;
  blobPort: number;
  postgresPort?: number;
  wellKnown?: { host: string; port: number } | { error: string };
}

/** The emulator prints one JSON line, {"ready":true,"port":N,...}, once it listens. */
function readyLine(output: string): ReadyLine | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const message = JSON.parse(line) as Partial<ReadyLine>;
      if (message.ready && typeof message.port === 'number') return message as ReadyLine;
    } catch {
      // a partial line; wait for more output
    }
  }
  return undefined;
}

export async function startAzureEmulator(options: StartAzureEmulatorOptions): Promise<AzureEmulator> {
  const config: EmulatorConfig = {
    port: 0,
    host: '127.0.0.1',
    tlsCertFile: options.certFile,
    tlsKeyFile: options.keyFile,
    tenantId: options.tenantId,
    tokenLifetimeSeconds: 3600,
  };
  if (options.postgres) config.postgres = { ...options.postgres, gatewayPort: 0 };
  if (options.wellKnown) {
    const { host, certFile, keyFile } = options.wellKnown;
    config.wellKnown = { host, port: 443, tlsCertFile: certFile, tlsKeyFile: keyFile };
  }
  const configFile = join(options.dir, 'azure-emulator.json');
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });

  let ready: ReadyLine | undefined;
  const managed = await startProcess({
    name: 'azure-emulator',
    command: options.nodePath ?? process.execPath,
    args: [mainScript, configFile],
    logDir: options.dir,
    env: { ...process.env, NODE_EXTRA_CA_CERTS: options.caFile },
    readyWhen: (output) => {
      ready = readyLine(output);
      return ready !== undefined;
    },
    timeoutMs: 20_000,
  });
  if (!ready) throw new Error('azure emulator reported no port');
  const url = `https://127.0.0.1:${ready.port}`;
  return {
    url,
    port: ready.port,
    blobUrl: `https://127.0.0.1:${ready.blobPort}`,
    postgresPort: ready.postgresPort,
    wellKnown: ready.wellKnown,
    client: new AzureEmulatorClient(url, { ca: readFileSync(options.caFile) }),
    stop: () => managed.stop(),
  };
}
