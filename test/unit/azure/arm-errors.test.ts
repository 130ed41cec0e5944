import { describe, expect, it } from 'vitest';
import { classifyArmError, parseRetryAfter } from '../../../src/azure/arm-errors.ts';

/** What @azure/core-client throws for an ARM error response, structurally. */
function restError(statusCode: number | undefined, code: string | undefined, message: string, headers = {}) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    name: 'RestError',
    statusCode,
    code,
    message,
    response: { headers: { get: (name: string) => lower[name.toLowerCase()] as string | undefined } },
  };
}

describe('parseRetryAfter', () => {
  const headers = (h: Record<string, string>) => (name: string) => h[name];
  it.each([
    [{ 'retry-after': '3' }, 3000],
    [{ 'retry-after': '0' }, 0],
    [{ 'retry-after': '1.5' }, 1500],
    [{ 'retry-after-ms': '250' }, 250],
    [{ 'x-ms-retry-after-ms': '120', 'retry-after': '9' }, 120],
    [{ 'retry-after': new Date(1_000_000 + 7000).toUTCString() }, 7000],
    [{ 'retry-after': new Date(1_000_000 - 7000).toUTCString() }, 0],
    [{ 'retry-after': 'soon' }, undefined],
    [{}, undefined],
  ])('%j → %s', (h, expected) => {
    expect(parseRetryAfter(headers(h), 1_000_000)).toBe(expected);
  });
});

describe('classifyArmError', () => {
  it.each([
    [restError(404, 'ResourceNotFound', 'not found'), 'notFound'],
    [
      restError(
        409,
        'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity',
        'Too many Federated Identity Credentials are written concurrently',
      ),
      'conflict',
    ],
    [restError(429, 'TooManyRequests', 'slow down'), 'throttled'],
    [restError(500, 'InternalServerError', 'oops'), 'transient'],
    [restError(503, 'ServiceUnavailable', 'busy'), 'transient'],
    [restError(408, undefined, 'timeout'), 'transient'],
    [restError(501, undefined, 'not implemented'), 'other'],
    [restError(undefined, 'ECONNRESET', 'socket hang up'), 'transient'],
    [restError(undefined, 'ERR_SOMETHING', 'weird'), 'other'],
    [restError(401, 'AuthenticationFailed', 'no'), 'denied'],
    [restError(403, 'AuthorizationFailed', 'no'), 'denied'],
    [
      restError(
        405,
        'MethodNotAllowed',
        'The request format was unexpected: Support for federated identity credentials not enabled.',
      ),
      'unsupported',
    ],
    [
      restError(
        400,
        'BadRequest',
        'The managed identity already has the maximum of 20 federated identity credentials. Delete one before adding another.',
      ),
      'limit',
    ],
    [restError(400, 'BadRequest', 'Too many federated identity credentials on this identity.'), 'limit'],
    [
      restError(
        400,
        'BadRequest',
        'Issuer and subject combination already exists for this Managed Identity.',
      ),
      'duplicate',
    ],
    [restError(400, 'BadRequest', "The issuer 'http://x' must be a valid https URL."), 'rejected'],
    [restError(400, 'BadRequest', 'The subject must be at most 600 characters long.'), 'rejected'],
    [restError(400, 'BadRequest', 'The name exceeds the maximum length of 120 characters.'), 'rejected'],
    [new Error('plain'), 'other'],
    ['a string', 'other'],
  ])('%#: → %s', (error, kind) => {
    expect(classifyArmError(error, 0).kind).toBe(kind);
  });

  it('carries status, code, message and Retry-After', () => {
    expect(
      classifyArmError(restError(429, 'TooManyRequests', 'slow down', { 'Retry-After': '2' }), 0),
    ).toEqual({
      kind: 'throttled',
      statusCode: 429,
      code: 'TooManyRequests',
      message: 'slow down',
      retryAfterMs: 2000,
    });
  });
});
