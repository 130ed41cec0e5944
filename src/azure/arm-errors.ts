// ARM failures as values: the typed errors the Azure layer throws (each with the condition reason
// the controller reports), and a pure classification of what the SDK threw. The SDK's RestError is
// read structurally (statusCode, code, message, response headers) so this module needs no import
// of the SDK's pipeline package and can be tested with plain objects.
import { Reason } from '../api/constants.ts';

/** The identity does not exist (or its resource group or subscription does not). */
export class IdentityNotFound extends Error {
  override name = 'IdentityNotFound';
  readonly reason = Reason.IdentityNotFound;
  readonly resourceId: string;

  constructor(resourceId: string, azureMessage: string) {
    super(
      `managed identity ${resourceId} was not found (${azureMessage}): check spec.identity.resourceId, ` +
        'and that the identity exists in that subscription and resource group',
    );
    this.resourceId = resourceId;
  }
}

/** The identity already holds the maximum number of FICs. */
export class FederatedCredentialLimit extends Error {
  override name = 'FederatedCredentialLimit';
  readonly reason = Reason.FederatedCredentialLimitReached;
  readonly resourceId: string;

  constructor(resourceId: string, detail: string) {
    super(
      `managed identity ${resourceId} already has the maximum of 20 federated identity credentials ` +
        `(${detail}): delete unused ones, or use another identity for this service account`,
    );
    this.resourceId = resourceId;
  }
}

/** Azure refused the FIC's content (400); the message is Azure's. */
export class FederatedCredentialRejected extends Error {
  override name = 'FederatedCredentialRejected';
  readonly reason = Reason.FederatedCredentialRejected;
  readonly resourceId: string;
  readonly ficName: string;
  readonly azureMessage: string;

  constructor(resourceId: string, ficName: string, azureMessage: string) {
    super(`Azure refused federated identity credential ${ficName} on ${resourceId}: ${azureMessage}`);
    this.resourceId = resourceId;
    this.ficName = ficName;
    this.azureMessage = azureMessage;
  }
}

/**
 * The identity's region does not support FICs: Azure answers every FIC operation there 405 ("The
 * request format was unexpected: Support for federated identity credentials not enabled.").
 */
export class FederatedCredentialsUnsupported extends Error {
  override name = 'FederatedCredentialsUnsupported';
  readonly reason = Reason.FederatedCredentialsUnsupported;
  readonly resourceId: string;

  constructor(resourceId: string, azureMessage: string) {
    super(
      `the region of managed identity ${resourceId} does not support federated identity credentials ` +
        `(Azure answered 405: ${azureMessage}): use a user-assigned identity created in a region that ` +
        'supports them (the identity may live in another region than the cluster)',
    );
    this.resourceId = resourceId;
  }
}

/** The operator's identity may not do this (401/403): a role assignment is missing. */
export class AzureAccessDenied extends Error {
  override name = 'AzureAccessDenied';
  readonly reason = Reason.AzureRequestFailed;
  readonly statusCode: number;

  constructor(operation: string, statusCode: number, azureMessage: string) {
    super(
      `Azure denied ${operation} (${statusCode}: ${azureMessage}): give the operator's identity the ` +
        "'Managed Identity Contributor' role on the identity, its resource group or subscription",
    );
    this.statusCode = statusCode;
  }
}

/**
 * Azure is throttling, busy or failing transiently and the in-process retries are used up (or
 * Azure asked for a wait longer than is worth holding a worker for): requeue after `retryAfterMs`.
 */
export class AzureRetryableError extends Error {
  override name = 'AzureRetryableError';
  readonly reason = Reason.AzureRequestFailed;
  readonly retryAfterMs: number;
  readonly statusCode: number | undefined;
  readonly code: string | undefined;

  constructor(operation: string, failure: ArmFailure, retryAfterMs: number, attempts: number) {
    super(
      `${operation} failed after ${attempts} attempt(s): ${failure.statusCode ?? failure.code ?? 'error'} ` +
        `${failure.message}; retrying in ${Math.ceil(retryAfterMs / 1000)}s`,
    );
    this.retryAfterMs = retryAfterMs;
    this.statusCode = failure.statusCode;
    this.code = failure.code;
  }
}

/**
 * A write not sent yet because its pacing slot (write-pacing.ts) is more than a moment away: the
 * caller should retry in `retryAfterMs`, when the slot kept for it is due. Nothing reached Azure.
 */
export class ArmWritePaced extends AzureRetryableError {
  override name = 'ArmWritePaced';

  constructor(operation: string, retryAfterMs: number) {
    super(
      operation,
      { kind: 'throttled', statusCode: undefined, code: 'ClientPacing', message: '', retryAfterMs },
      retryAfterMs,
      0,
    );
    this.message = `${operation} waits for its turn under the FIC write rate limits; retrying in ${Math.ceil(retryAfterMs / 1000)}s`;
  }
}

export type ArmFailureKind =
  /** 404: the resource (or its parent) does not exist. */
  | 'notFound'
  /** 409: another write on the identity is in flight (Azure allows one at a time). */
  | 'conflict'
  /** 429: throttled. */
  | 'throttled'
  /** 408, 5xx (but 501/505) or a network error: worth retrying. */
  | 'transient'
  /** 400 because the identity is full. */
  | 'limit'
  /** 400 because another FIC already has this issuer+subject. */
  | 'duplicate'
  /** Any other 400: the request itself is wrong. */
  | 'rejected'
  /** 401/403. */
  | 'denied'
  /** 405: the identity's region does not support FICs. */
  | 'unsupported'
  /** Anything else: not ours to interpret. */
  | 'other';

export interface ArmFailure {
  kind: ArmFailureKind;
  statusCode: number | undefined;
  code: string | undefined;
  message: string;
  /** From the response's retry-after-ms, x-ms-retry-after-ms or Retry-After header. */
  retryAfterMs: number | undefined;
}

export const RETRYABLE: ReadonlySet<ArmFailureKind> = new Set(['conflict', 'throttled', 'transient']);

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'REQUEST_SEND_ERROR',
]);

/**
 * Retry-After is seconds or an HTTP date; the -ms headers are milliseconds. Returns undefined when
 * absent or unreadable.
 */
export function parseRetryAfter(
  header: (name: string) => string | undefined,
  now: number,
): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = header(name)?.trim();
    if (value && /^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value));
  }
  const value = header('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

interface RestErrorLike {
  message?: unknown;
  statusCode?: unknown;
  code?: unknown;
  response?: { headers?: { get?: (name: string) => string | undefined } };
}

// Azure words the 20-FIC limit variously; a message about a field's length is a plain rejection.
const LIMIT_MESSAGE = /maximum|limit|too many|quota|exceed/i;
const LENGTH_MESSAGE = /length|characters|long\b/i;
const DUPLICATE_MESSAGE = /issuer and subject combination already exists/i;

export function classifyArmError(error: unknown, now: number): ArmFailure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as RestErrorLike;
  const statusCode = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const get = e.response?.headers?.get;
  const retryAfterMs = get ? parseRetryAfter((name) => get.call(e.response?.headers, name), now) : undefined;
  const failure = (kind: ArmFailureKind): ArmFailure => ({ kind, statusCode, code, message, retryAfterMs });

  if (statusCode === undefined) return failure(code && NETWORK_CODES.has(code) ? 'transient' : 'other');
  if (statusCode === 404) return failure('notFound');
  if (statusCode === 409) return failure('conflict');
  if (statusCode === 429) return failure('throttled');
  if (statusCode === 401 || statusCode === 403) return failure('denied');
  if (statusCode === 405) return failure('unsupported');
  if (statusCode === 408 || (statusCode >= 500 && statusCode !== 501 && statusCode !== 505)) {
    return failure('transient');
  }
  if (statusCode === 400) {
    if (DUPLICATE_MESSAGE.test(message)) return failure('duplicate');
    if (LIMIT_MESSAGE.test(message) && !LENGTH_MESSAGE.test(message)) return failure('limit');
    return failure('rejected');
  }
  return failure('other');
}
