// A minimal Azure Blob Storage data plane with Microsoft Entra authorization, for
// @azure/storage-blob with a TokenCredential: Get Blob (with x-ms-range/Range), Get Blob
// Properties (HEAD) and Put Blob (block blobs), path-style, on a listener of its own
// (`https://127.0.0.1:{blobPort}/{account}/{container}/{blob}`; the SDK reads the account from the
// first path segment when the host is an IP address).
//
// Every request needs a bearer token this emulator issued for `https://storage.azure.com`,
// correctly signed and unexpired, and an effective role assignment (role-assignments.ts,
// propagation delay included) at or above the container whose role grants the blob data action:
// `…/containers/blobs/read` for GET and HEAD (Storage Blob Data Reader, Contributor, Owner),
// `…/containers/blobs/write` for PUT (Contributor, Owner).
//
// Azure's answers (learn.microsoft.com/rest/api/storageservices/blob-service-error-codes and
// …/common-rest-api-error-codes; learn.microsoft.com/azure/storage/blobs/authorize-access-azure-active-directory):
// - no Authorization header: 401 NoAuthenticationInformation, with a Bearer challenge;
// - a token that fails validation: 401 InvalidAuthenticationInfo with AuthenticationErrorDetail
//   ("Audience validation failed. Audience did not match.", "Lifetime validation failed. The token
//   is expired.", …) and `WWW-Authenticate: Bearer authorization_uri=https://login.microsoftonline.com/{tenant}/oauth2/authorize resource_id=https://storage.azure.com`,
//   which @azure/storage-blob's bearer policy (core-rest-pipeline bearerTokenAuthenticationPolicy
//   with authorizeRequestOnTenantChallenge) answers by fetching a token for the named tenant and
//   retrying once; the SDK sends its token on the first request, so the challenge is not a
//   handshake it needs;
// - Bearer with an x-ms-version older than 2017-11-09: 403 AuthenticationFailed ("Authentication
//   scheme Bearer is not supported in this version.");
// - a valid token without the data action: 403 AuthorizationPermissionMismatch, "This request is
//   not authorized to perform this operation using this permission.";
// - 404 ContainerNotFound / BlobNotFound for what does not exist (after authorization).
// Errors are XML `<Error><Code/><Message/></Error>` with the code in `x-ms-error-code` too (HEAD:
// header only), which the SDK turns into RestError.code.
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { errors as joseErrors } from 'jose';
import { containerScope } from './arm-scopes.ts';
import type { Blob } from './blob-store.ts';
import type { EmulatorContext } from './context.ts';
import type { BlobOperation } from './counters.ts';
import { grantingAssignment } from './role-assignments.ts';

export const STORAGE_AUDIENCES = ['https://storage.azure.com', 'https://storage.azure.com/'];
/** The first service version that accepts bearer tokens. */
export const MIN_BEARER_VERSION = '2017-11-09';
const SERVICE_VERSION = '2026-02-06';
const DATA_ACTIONS = {
  read: 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read',
  write: 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write',
} as const;

class StorageError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string | undefined;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    message: string,
    detail?: string,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.headers = headers;
  }
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function send(req: Request, res: Response, error: StorageError): void {
  const requestId = res.getHeader('x-ms-request-id');
  res.locals.storageErrorCode = error.code;
  res.status(error.status).set(error.headers).set('x-ms-error-code', error.code);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const detail = error.detail
    ? `<AuthenticationErrorDetail>${xmlEscape(error.detail)}</AuthenticationErrorDetail>`
    : '';
  res
    .type('application/xml')
    .send(
      `<?xml version="1.0" encoding="utf-8"?><Error><Code>${error.code}</Code><Message>${xmlEscape(error.message)}\n` +
        `RequestId:${String(requestId)}\nTime:${new Date().toISOString()}</Message>${detail}</Error>`,
    );
}

function challenge(tenantId: string): Record<string, string> {
  return {
    'WWW-Authenticate': `Bearer authorization_uri=https://login.microsoftonline.com/${tenantId}/oauth2/authorize resource_id=https://storage.azure.com`,
  };
}

const AUTH_FAILED =
  'Server failed to authenticate the request. Please refer to the information in the www-authenticate header.';

/** The caller's object ID from a valid storage token, or the StorageError Azure would answer. */
async function authenticate(ctx: EmulatorContext, req: Request): Promise<string> {
  const header = req.headers.authorization;
  if (!header)
    throw new StorageError(
      401,
      'NoAuthenticationInformation',
      AUTH_FAILED,
      undefined,
      challenge(ctx.config.tenantId),
    );
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  const version = req.headers['x-ms-version'];
  if (match && (typeof version !== 'string' || version < MIN_BEARER_VERSION)) {
    throw new StorageError(
      403,
      'AuthenticationFailed',
      'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.',
      'Authentication scheme Bearer is not supported in this version.',
    );
  }
  if (!match) {
    throw new StorageError(
      401,
      'InvalidAuthenticationInfo',
      AUTH_FAILED,
      'The emulator accepts only Bearer tokens (no shared key, no SAS).',
      challenge(ctx.config.tenantId),
    );
  }
  try {
    const claims = await ctx.tokens.verify(match[1]!, STORAGE_AUDIENCES);
    return String(claims.oid);
  } catch (error) {
    let detail = `Signature validation failed: ${(error as Error).message}`;
    if (error instanceof joseErrors.JWTExpired) detail = 'Lifetime validation failed. The token is expired.';
    else if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'aud')
      detail = 'Audience validation failed. Audience did not match.';
    else if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'iss')
      detail = 'Issuer validation failed. Issuer did not match.';
    throw new StorageError(
      401,
      'InvalidAuthenticationInfo',
      AUTH_FAILED,
      detail,
      challenge(ctx.config.tenantId),
    );
  }
}

interface BlobPath {
  account: string;
  container: string;
  blob: string;
}

function parsePath(path: string): BlobPath | undefined {
  const [, account, container, ...rest] = path.split('/');
  if (!account || !container || rest.length === 0) return undefined;
  const blob = rest.map((s) => decodeURIComponent(s)).join('/');
  return blob === '' ? undefined : { account, container, blob };
}

function operationOf(method: string): BlobOperation {
  if (method === 'GET') return 'blobGet';
  if (method === 'HEAD') return 'blobHead';
  if (method === 'PUT') return 'blobPut';
  return 'other';
}

function blobHeaders(blob: Blob): Record<string, string> {
  return {
    'Last-Modified': blob.lastModified.toUTCString(),
    ETag: blob.etag,
    'x-ms-blob-type': 'BlockBlob',
    'x-ms-creation-time': blob.lastModified.toUTCString(),
    'x-ms-lease-status': 'unlocked',
    'x-ms-lease-state': 'available',
    'x-ms-server-encrypted': 'true',
    'Accept-Ranges': 'bytes',
  };
}

/** `bytes=a-b` / `bytes=a-` → [a, b] within the blob, or undefined for the whole blob. */
function range(req: Request, size: number): [number, number] | undefined | 'invalid' {
  const raw = req.headers['x-ms-range'] ?? req.headers.range;
  if (typeof raw !== 'string') return undefined;
  const match = /^bytes=(\d+)-(\d*)$/.exec(raw.trim());
  if (!match) return 'invalid';
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) return 'invalid';
  return [start, end];
}

async function serve(ctx: EmulatorContext, req: Request, res: Response): Promise<void> {
  const operation = operationOf(req.method);
  if (operation === 'other') {
    throw new StorageError(
      400,
      'UnsupportedHttpVerb',
      `The resource doesn't support specified Http Verb ${req.method}.`,
    );
  }
  const oid = await authenticate(ctx, req);
  const path = parsePath(req.path);
  if (!path || req.query.comp !== undefined || req.query.restype !== undefined) {
    throw new StorageError(
      400,
      'UnsupportedQueryParameter',
      'The emulator serves Get Blob, Get Blob Properties and Put Blob only.',
    );
  }
  const account = ctx.blobs.account(path.account);
  if (!account) throw new StorageError(404, 'ResourceNotFound', 'The specified resource does not exist.');
  const action = operation === 'blobPut' ? DATA_ACTIONS.write : DATA_ACTIONS.read;
  const grant = grantingAssignment(ctx.roleAssignments, {
    principalId: oid,
    action,
    kind: 'data',
    scope: containerScope(account, path.container),
    now: Date.now(),
    propagationSeconds: ctx.settings.roleAssignmentPropagationSeconds,
  });
  if (!grant) {
    throw new StorageError(
      403,
      'AuthorizationPermissionMismatch',
      'This request is not authorized to perform this operation using this permission.',
    );
  }
  const blobs = account.containers.get(path.container);
  if (!blobs) throw new StorageError(404, 'ContainerNotFound', 'The specified container does not exist.');

  if (operation === 'blobPut') {
    const type = req.headers['x-ms-blob-type'];
    if (type !== 'BlockBlob') {
      throw new StorageError(
        400,
        'InvalidHeaderValue',
        'The value for one of the HTTP headers is not in the correct format.',
      );
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const contentType = req.headers['x-ms-blob-content-type'] ?? 'application/octet-stream';
    const blob = ctx.blobs.putBlob(path.account, path.container, path.blob, body, String(contentType));
    res
      .status(201)
      .set({
        ETag: blob.etag,
        'Last-Modified': blob.lastModified.toUTCString(),
        'x-ms-request-server-encrypted': 'true',
      })
      .end();
    return;
  }
  const blob = blobs.get(path.blob);
  if (!blob) throw new StorageError(404, 'BlobNotFound', 'The specified blob does not exist.');
  const size = blob.content.length;
  const wanted = range(req, size);
  if (wanted === 'invalid') {
    throw new StorageError(
      416,
      'InvalidRange',
      'The range specified is invalid for the current size of the resource.',
      undefined,
      {
        'Content-Range': `bytes */${size}`,
      },
    );
  }
  const [start, end] = wanted ?? [0, size - 1];
  const body = blob.content.subarray(start, end + 1);
  res
    .status(wanted ? 206 : 200)
    .set(blobHeaders(blob))
    .set({ 'Content-Type': blob.contentType, 'Content-Length': String(body.length) });
  if (wanted) res.set('Content-Range', `bytes ${start}-${end}/${size}`);
  if (operation === 'blobHead') {
    res.set('Content-Length', String(size)).end();
    return;
  }
  res.end(body);
}

/** The Blob data plane as an Express app, for a listener of its own (server.ts). */
export function blobApp(ctx: EmulatorContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req: Request, res: Response, next: NextFunction) => {
    const version = req.headers['x-ms-version'];
    res.set({
      'x-ms-request-id': randomUUID(),
      'x-ms-version': typeof version === 'string' ? version : SERVICE_VERSION,
      ...(typeof req.headers['x-ms-client-request-id'] === 'string'
        ? { 'x-ms-client-request-id': req.headers['x-ms-client-request-id'] }
        : {}),
    });
    res.on('finish', () => {
      const operation = operationOf(req.method);
      ctx.counters.recordSurface('blob', operation, res.statusCode, {
        write: operation === 'blobPut',
        errorCode: res.locals.storageErrorCode as string | undefined,
      });
    });
    next();
  });
  app.use(express.raw({ type: () => true, limit: '16mb' }));
  app.use(async (req: Request, res: Response) => {
    try {
      await serve(ctx, req, res);
    } catch (error) {
      if (error instanceof StorageError) return send(req, res, error);
      process.stderr.write(`azure-emulator: blob request failed: ${(error as Error).stack}\n`);
      send(req, res, new StorageError(500, 'InternalError', 'The server encountered an internal error.'));
    }
  });
  return app;
}
