// The ARM subset: user-assigned identities (read) and their federated identity credentials
// (create/update, read, list, delete), with ARM's authentication, api-version check, Azure's FIC
// rules, 409 on concurrent writes to one identity, Azure's throttling of reads and writes (on by
// default, rate-limits.ts), 405 where the identity's region does not support FICs, and injected
// faults.
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { errors as joseErrors } from 'jose';
import { identityNotFound, sendArmError } from './arm-errors.ts';
import { ficsUnsupportedFor, limitsFor, type ThrottledOperation } from './config.ts';
import type { EmulatorContext } from './context.ts';
import { classifyArmOperation } from './counters.ts';
import { faultMiddleware } from './fault-middleware.ts';
import {
  checkFicPut,
  ficResource,
  type Identity,
  identityArmId,
  identityResource,
  parseFicBody,
  putFic,
} from './state.ts';

/** Audiences ARM accepts (Entra issues either form depending on the scope's spelling). */
const ARM_AUDIENCES = [
  'https://management.azure.com/',
  'https://management.azure.com',
  'https://management.core.windows.net/',
];

const IDENTITY_PATH =
  '/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.ManagedIdentity/userAssignedIdentities/:name';
const FICS_PATH = `${IDENTITY_PATH}/federatedIdentityCredentials`;
const FIC_PATH = `${FICS_PATH}/:ficName`;

type IdentityParams = { subscriptionId: string; resourceGroup: string; name: string };
type FicParams = IdentityParams & { ficName: string };

function countRequests(ctx: EmulatorContext) {
  return (req: Request, res: Response, next: NextFunction) => {
    const path = new URL(req.originalUrl, 'https://x').pathname;
    const operation = classifyArmOperation(req.method, path);
    res.on('finish', () =>
      ctx.counters.recordArm(operation, res.statusCode, {
        ...(res.locals.throttledBy ? { throttledBy: res.locals.throttledBy as string } : {}),
        identity: identityOfPath(path),
      }),
    );
    next();
  };
}

/** `{subscription, identity}` (lower-cased) of a path under an identity, for per-scope counts. */
function identityOfPath(path: string): { subscription: string; identity: string } | undefined {
  const match =
    /^(\/subscriptions\/([^/]+)\/resourcegroups\/[^/]+\/providers\/microsoft\.managedidentity\/userassignedidentities\/[^/]+)/i.exec(
      path,
    );
  return match ? { subscription: match[2]!.toLowerCase(), identity: match[1]!.toLowerCase() } : undefined;
}

/**
 * Azure's throttling (config.ts AZURE_RATE_LIMITS unless the subscription has its own): before
 * the identity is looked up, as ARM counts requests, not successes. 429 with Retry-After.
 */
function throttle(ctx: EmulatorContext, operation: ThrottledOperation) {
  return (req: Request<IdentityParams>, res: Response, next: NextFunction) => {
    const { subscriptionId, resourceGroup, name } = req.params;
    const limit = limitsFor(ctx.settings, subscriptionId)[operation];
    const admission = ctx.throttle.take(
      operation,
      limit,
      {
        tenant: ctx.config.tenantId,
        subscription: subscriptionId,
        resource: `/subscriptions/${subscriptionId}/resourcegroups/${resourceGroup}/${name}`,
      },
      Date.now(),
    );
    if (admission.allowed) return next();
    res.locals.throttledBy = admission.by;
    const what = operation === 'createOrUpdate' || operation === 'delete' ? 'writes' : 'reads';
    sendArmError(
      res,
      429,
      'TooManyRequests',
      `Too many requests (${what}: ${admission.by.replace('/', ' ')}). Retry after ${admission.retryAfterSeconds} seconds.`,
      { 'Retry-After': String(admission.retryAfterSeconds) },
    );
  };
}

function unauthorized(req: Request, res: Response, tenantId: string, message: string): void {
  const challenge =
    `Bearer authorization_uri="https://${req.headers.host}/${tenantId}", error="invalid_token", ` +
    `error_description="${message.replace(/"/g, "'")}"`;
  sendArmError(res, 401, 'AuthenticationFailed', message, { 'WWW-Authenticate': challenge });
}

/**
 * Only tokens this emulator issued for ARM, unexpired and correctly signed, get through; their
 * claims are left in `res.locals.armCaller` for routes that authorize the caller.
 */
export function authenticate(ctx: EmulatorContext) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) {
      return unauthorized(
        req,
        res,
        ctx.config.tenantId,
        "Authentication failed. The 'Authorization' header is missing.",
      );
    }
    try {
      res.locals.armCaller = await ctx.tokens.verify(match[1]!, ARM_AUDIENCES);
    } catch (error) {
      let message = 'Authentication failed. The access token is not valid.';
      if (error instanceof joseErrors.JWTExpired) {
        message = 'Authentication failed. The access token has expired.';
      } else if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'aud') {
        message =
          'Authentication failed. The access token has been obtained for the wrong audience or resource; it ' +
          `should be one of ${ARM_AUDIENCES.join(', ')}.`;
      } else if (error instanceof Error) {
        message = `Authentication failed. The access token is not valid: ${error.message}`;
      }
      return unauthorized(req, res, ctx.config.tenantId, message);
    }
    next();
  };
}

export function requireApiVersion(req: Request, res: Response, next: NextFunction): void {
  if (typeof req.query['api-version'] === 'string' && req.query['api-version'] !== '') {
    next();
    return;
  }
  sendArmError(
    res,
    400,
    'MissingApiVersionParameter',
    'The api-version query parameter (?api-version=) is required for all requests.',
  );
}

function findIdentity(
  ctx: EmulatorContext,
  req: Request<IdentityParams>,
  res: Response,
): Identity | undefined {
  const { subscriptionId, resourceGroup, name } = req.params;
  const identity = ctx.identities.get(subscriptionId, resourceGroup, name);
  if (!identity) identityNotFound(res, resourceGroup, name);
  return identity;
}

/**
 * The identity whose FICs a request names, unless it does not exist (404) or its region does not
 * support FICs: Azure's documented 405 for every FIC operation there (the page documents the status
 * and the message, not an error code).
 */
function findFicParent(
  ctx: EmulatorContext,
  req: Request<IdentityParams>,
  res: Response,
): Identity | undefined {
  const identity = findIdentity(ctx, req, res);
  if (!identity) return undefined;
  const unsupported = ficsUnsupportedFor(ctx.settings, {
    subscriptionId: identity.subscriptionId,
    location: identity.location,
    armId: identityArmId(identity),
  });
  if (!unsupported) return identity;
  sendArmError(
    res,
    405,
    'MethodNotAllowed',
    'The request format was unexpected: Support for federated identity credentials not enabled.',
  );
  return undefined;
}

/**
 * Runs a FIC write the way Azure serialises them (after the throttle): refused with 409 while
 * another write on the same identity is in flight, and taking `writeLatencyMs`.
 */
async function write(
  ctx: EmulatorContext,
  req: Request<FicParams>,
  res: Response,
  apply: (identity: Identity) => void,
): Promise<void> {
  const identity = findFicParent(ctx, req, res);
  if (!identity) return;
  if (identity.writeInFlight) {
    return sendArmError(
      res,
      409,
      'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity',
      `Too many Federated Identity Credentials are written concurrently for the managed identity ${identityArmId(identity)}.`,
    );
  }
  identity.writeInFlight = true;
  try {
    if (ctx.settings.writeLatencyMs > 0) await sleep(ctx.settings.writeLatencyMs);
    // The identity may have been deleted through the control API meanwhile.
    if (ctx.identities.get(identity.subscriptionId, identity.resourceGroup, identity.name) !== identity) {
      return identityNotFound(res, identity.resourceGroup, identity.name);
    }
    apply(identity);
  } finally {
    identity.writeInFlight = false;
  }
}

export function armRouter(ctx: EmulatorContext): Router {
  const router = Router({ caseSensitive: false });
  router.use(
    '/subscriptions',
    countRequests(ctx),
    authenticate(ctx),
    requireApiVersion,
    faultMiddleware(ctx, 'arm'),
  );
  router.use('/subscriptions', express.json({ limit: '1mb' }));

  router.get(IDENTITY_PATH, throttle(ctx, 'get'), (req: Request<IdentityParams>, res) => {
    const identity = findIdentity(ctx, req, res);
    if (identity) res.json(identityResource(identity));
  });

  router.get(FICS_PATH, throttle(ctx, 'list'), (req: Request<IdentityParams>, res) => {
    const identity = findFicParent(ctx, req, res);
    if (identity) res.json({ value: [...identity.fics.values()].map((fic) => ficResource(identity, fic)) });
  });

  router.get(FIC_PATH, throttle(ctx, 'get'), (req: Request<FicParams>, res) => {
    const identity = findFicParent(ctx, req, res);
    if (!identity) return;
    const fic = identity.fics.get(req.params.ficName.toLowerCase());
    if (!fic) {
      return sendArmError(
        res,
        404,
        'NotFound',
        `Federated identity credential '${req.params.ficName}' was not found for the managed identity ${identityArmId(identity)}.`,
      );
    }
    res.json(ficResource(identity, fic));
  });

  router.put(FIC_PATH, throttle(ctx, 'createOrUpdate'), (req: Request<FicParams>, res) =>
    write(ctx, req, res, (identity) => {
      const props = parseFicBody(req.body);
      if (typeof props === 'string') return sendArmError(res, 400, 'BadRequest', props);
      const problem = checkFicPut(identity, req.params.ficName, props);
      if (problem) return sendArmError(res, 400, 'BadRequest', problem);
      const { created, fic } = putFic(identity, req.params.ficName, props, Date.now());
      res.status(created ? 201 : 200).json(ficResource(identity, fic));
    }),
  );

  router.delete(FIC_PATH, throttle(ctx, 'delete'), (req: Request<FicParams>, res) =>
    write(ctx, req, res, (identity) => {
      const existed = identity.fics.delete(req.params.ficName.toLowerCase());
      res.status(existed ? 200 : 204).end();
    }),
  );

  router.all('/subscriptions/*rest', (req, res) => {
    sendArmError(res, 404, 'NotFound', `The emulator does not serve ${req.method} ${req.path}.`);
  });

  // Body parse errors and anything unexpected, in ARM's envelope.
  router.use(
    '/subscriptions',
    (error: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
      const status = error.status && error.status >= 400 && error.status < 500 ? error.status : 500;
      sendArmError(res, status, status === 500 ? 'InternalServerError' : 'BadRequest', error.message);
    },
  );
  return router;
}
