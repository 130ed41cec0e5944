// The webhook's HTTP surface: an express app with one POST route per kind, bounded request
// bodies, 4xx with a reason for anything that is not a well-formed AdmissionReview, and the
// controller-runtime webhook metrics. Served over HTTPS with a reloadable certificate.
import type { Server } from 'node:https';
import { createServer } from 'node:https';
import express, { type NextFunction, type Request, type Response } from 'express';
import { NAMESPACE_WEBHOOK_PATH, POD_WEBHOOK_PATH, SERVICE_ACCOUNT_WEBHOOK_PATH } from '../api/constants.ts';
import type { Logger } from '../observability/logger.ts';
import type { WebhookMetrics } from '../observability/metrics.ts';
import { decodeAdmissionReview, MalformedAdmissionReview } from './admission.ts';
import type { AdmissionHandler, HandlerResult } from './handlers.ts';
import type { CertificateWatcher } from './tls.ts';

export interface WebhookAppOptions {
  handlers: Record<'pod' | 'serviceAccount' | 'namespace', AdmissionHandler>;
  metrics: WebhookMetrics;
  logger: Logger;
  maxRequestBytes: number;
}

function errorStatus(error: unknown): number {
  const status = (error as { status?: unknown; statusCode?: unknown })?.status;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : 400;
}

export function createWebhookApp(options: WebhookAppOptions): express.Express {
  const { handlers, metrics, logger } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const json = express.json({ limit: options.maxRequestBytes, strict: true, type: () => true });

  const route = (path: string, handler: AdmissionHandler): void => {
    app.post(path, (_req: Request, res: Response, next: NextFunction) => {
      const started = process.hrtime.bigint();
      metrics.inFlight.inc({ webhook: path });
      res.on('finish', () => {
        metrics.inFlight.dec({ webhook: path });
        metrics.latency.observe({ webhook: path }, Number(process.hrtime.bigint() - started) / 1e9);
        metrics.requests.inc({ webhook: path, code: String(res.statusCode) });
      });
      next();
    });
    app.post(path, json, async (req: Request, res: Response) => {
      let request: ReturnType<typeof decodeAdmissionReview>;
      try {
        request = decodeAdmissionReview(req.body);
      } catch (error) {
        metrics.mutations.inc({ kind: handler.kind, outcome: 'error' });
        res.status(400).json({ error: (error as Error).message });
        return;
      }
      const context = {
        uid: request.uid,
        kind: handler.kind,
        namespace: request.namespace,
        name: request.name,
      };
      let result: HandlerResult;
      try {
        result = await handler.handle(request);
      } catch (error) {
        if (error instanceof MalformedAdmissionReview) {
          metrics.mutations.inc({ kind: handler.kind, outcome: 'error' });
          res.status(400).json({ error: error.message });
          return;
        }
        // A bug or an unexpected failure: refuse with the reason rather than answer 5xx, which the
        // apiserver would turn into an opaque "failed calling webhook" error.
        logger.error({ ...context, err: (error as Error).message }, 'admission failed');
        metrics.mutations.inc({ kind: handler.kind, outcome: 'error' });
        res.json({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: {
            uid: request.uid,
            allowed: false,
            status: {
              code: 500,
              reason: 'InternalError',
              message: `entra-access could not process this request: ${(error as Error).message}`,
            },
          },
        });
        return;
      }
      metrics.mutations.inc({ kind: handler.kind, outcome: result.outcome });
      // A denial is news; a patch is the normal case, counted by the metric above. Logging every
      // patched pod at info cost ~10 % of the webhook's CPU at 1,000 admissions/s (synchronous
      // stdout writes; see docs/benchmarks.md), so it is debug, like the other outcomes.
      if (result.outcome === 'denied') {
        const message = result.response.response.status?.message;
        logger.info(
          { ...context, outcome: result.outcome, ...(message ? { reason: message } : {}) },
          'admission',
        );
      } else if (logger.isLevelEnabled('debug')) {
        logger.debug({ ...context, outcome: result.outcome }, 'admission');
      }
      res.json(result.response);
    });
  };
  route(POD_WEBHOOK_PATH, handlers.pod);
  route(SERVICE_ACCOUNT_WEBHOOK_PATH, handlers.serviceAccount);
  route(NAMESPACE_WEBHOOK_PATH, handlers.namespace);

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no webhook at ${req.method} ${req.path}` });
  });
  // body-parser errors (invalid JSON, too large) and anything else thrown before a handler ran.
  app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
    const status = errorStatus(error);
    res.status(status).json({ error: `${error.message}` });
  });
  return app;
}

/** An HTTPS server that swaps its certificate whenever the watcher loads a new pair. */
export function createWebhookServer(app: express.Express, certificates: CertificateWatcher): Server {
  const current = certificates.current;
  if (!current) throw new Error('createWebhookServer needs a loaded certificate');
  const server = createServer({ cert: current.cert, key: current.key, minVersion: 'TLSv1.2' }, app);
  certificates.onChange((certificate) => server.setSecureContext({ ...certificate, minVersion: 'TLSv1.2' }));
  // The apiserver keeps connections to webhooks alive; closing them after Node's 5 s default
  // would add a TLS handshake to many admissions.
  server.keepAliveTimeout = 90_000;
  server.headersTimeout = 91_000;
  return server;
}
