// The plain-HTTP side servers controller-runtime users expect: /metrics on the metrics port and
// /healthz + /readyz on the health port. Readiness is a list of named checks; /readyz names the
// ones that fail, so `kubectl describe pod` says why a replica is not ready.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export type ReadinessCheck = { name: string; ready: () => boolean };

function listen(server: Server, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function startHealthServer(port: number, host: string, checks: ReadinessCheck[]): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else if (path === '/readyz') {
      const failing = checks.filter((check) => !check.ready()).map((check) => check.name);
      if (failing.length === 0) res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      else res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${failing.join(', ')}`);
    } else {
      res.writeHead(404).end();
    }
  });
  return listen(server, port, host);
}

export function startMetricsServer(port: number, host: string, registry: Registry): Promise<Server> {
  const server = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (error: Error) => res.writeHead(500).end(error.message),
    );
  });
  return listen(server, port, host);
}

/** Closes an HTTP(S) server, cutting idle keep-alive connections instead of waiting them out. */
export function closeServer(
  server: { close(callback: () => void): unknown; closeAllConnections(): void } | undefined,
): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
