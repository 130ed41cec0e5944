// Assembles the emulator: one HTTPS server carrying the ARM subset, the Entra subset and the
// control API, like management.azure.com and login.microsoftonline.com folded into one origin.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import express, { type NextFunction, type Request, type Response } from 'express';
import { armRouter } from './arm-routes.ts';
import { authorizationRoutes } from './authorization-routes.ts';
import { blobApp } from './blob-routes.ts';
import type { EmulatorConfig } from './config.ts';
import { createContext, type EmulatorContext } from './context.ts';
import { controlRouter } from './control-routes.ts';
import { entraRouter } from './entra-routes.ts';
import { type PostgresGateway, startPostgresGateway } from './postgres-gateway.ts';

export interface RunningEmulator {
  port: number;
  /** The Blob data plane's port (blob-routes.ts), on the same host. */
  blobPort: number;
  /** The PostgreSQL gateway's port, when the config has a postgres section. */
  postgresPort: number | undefined;
  /** Where it answers as the well-known authority host, or why it does not (config.wellKnown). */
  wellKnown: { host: string; port: number } | { error: string } | undefined;
  context: EmulatorContext;
  close(): Promise<void>;
}

export function createApp(ctx: EmulatorContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (process.env.AZURE_EMULATOR_LOG_REQUESTS) {
    // Debug aid: one stderr line per request, to see exactly what an SDK calls.
    app.use((req: Request, res: Response, next: NextFunction) => {
      res.on('finish', () =>
        process.stderr.write(`azure-emulator: ${req.method} ${req.originalUrl} -> ${res.statusCode}\n`),
      );
      next();
    });
  }
  app.use('/_emulator', controlRouter(ctx));
  // Before the MSI routes, which answer 404 for every /subscriptions path they do not serve.
  app.use(authorizationRoutes(ctx));
  app.use(armRouter(ctx));
  app.use(entraRouter(ctx));
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'NotFound', message: `No route for ${req.method} ${req.path}` } });
  });
  app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
    process.stderr.write(`azure-emulator: ${error.stack ?? error.message}\n`);
    if (!res.headersSent)
      res.status(500).json({ error: { code: 'InternalServerError', message: error.message } });
  });
  return app;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startEmulator(config: EmulatorConfig): Promise<RunningEmulator> {
  const context = await createContext(config);
  const tls = { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) };
  const app = createApp(context);
  const server: Server = createServer(tls, app);
  await listen(server, config.port, config.host);
  const port = (server.address() as AddressInfo).port;
  // Blob Storage lives on a host of its own in Azure; here on a port of its own (path-style URLs).
  const blobServer: Server = createServer(tls, blobApp(context));
  await listen(blobServer, config.blobPort ?? 0, config.host);
  const blobPort = (blobServer.address() as AddressInfo).port;
  // The same routes again as login.microsoftonline.com. Not fatal when it cannot listen (not
  // root, the address taken): only the clients that need it fail, saying why.
  let wellKnownServer: Server | undefined;
  let wellKnown: RunningEmulator['wellKnown'];
  if (config.wellKnown) {
    const { host, port: wellKnownPort, tlsCertFile, tlsKeyFile } = config.wellKnown;
    const candidate = createServer({ cert: readFileSync(tlsCertFile), key: readFileSync(tlsKeyFile) }, app);
    try {
      await listen(candidate, wellKnownPort, host);
      wellKnownServer = candidate;
      wellKnown = { host, port: wellKnownPort };
    } catch (error) {
      wellKnown = { error: `cannot listen on ${host}:${wellKnownPort}: ${(error as Error).message}` };
    }
  }
  let gateway: PostgresGateway | undefined;
  if (config.postgres && context.postgres) {
    gateway = await startPostgresGateway({
      host: config.host,
      port: config.postgres.gatewayPort,
      secureContext: createSecureContext(tls),
      upstreamSocket: config.postgres.upstreamSocket,
      logins: context.postgres,
    });
  }
  return {
    port,
    blobPort,
    postgresPort: gateway?.port,
    wellKnown,
    context,
    async close() {
      for (const s of [server, blobServer, wellKnownServer]) {
        if (!s) continue;
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        s.closeAllConnections();
        await closed;
      }
      await gateway?.close();
      await context.postgres?.close();
    },
  };
}
