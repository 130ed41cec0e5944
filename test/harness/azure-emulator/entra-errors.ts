// Entra token endpoint errors in the shape login.microsoftonline.com sends them, so MSAL and
// @azure/identity surface them to the code under test exactly as they would in Azure.
import { randomUUID } from 'node:crypto';

export class EntraError extends Error {
  readonly status: number;
  /** OAuth error, e.g. `invalid_request`, `invalid_client`, `unauthorized_client`. */
  readonly error: string;
  /** AADSTS number, e.g. 70021. */
  readonly code: number;

  constructor(status: number, error: string, code: number, description: string) {
    super(`AADSTS${code}: ${description}`);
    this.status = status;
    this.error = error;
    this.code = code;
  }

  /** Counter key for this outcome. */
  get outcome(): string {
    return `AADSTS${this.code}`;
  }
}

export function entraErrorBody(error: string, message: string, codes: number[]) {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  return {
    error,
    error_description: `${message} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
    error_codes: codes,
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${codes[0] ?? 0}`,
  };
}

const FEDERATION_DOCS = 'https://learn.microsoft.com/entra/workload-id/workload-identity-federation';

export function noMatchingFederatedIdentity(issuer: string, subject: string, audience: string): EntraError {
  return new EntraError(
    400,
    'invalid_request',
    70021,
    'No matching federated identity record found for presented assertion. ' +
      `Assertion Issuer: '${issuer}'. Assertion Subject: '${subject}'. Assertion Audience: '${audience}'. ${FEDERATION_DOCS}`,
  );
}

export function applicationNotFound(clientId: string, tenantId: string): EntraError {
  return new EntraError(
    400,
    'unauthorized_client',
    700016,
    `Application with identifier '${clientId}' was not found in the directory '${tenantId}'. This can happen if ` +
      'the application has not been installed by the administrator of the tenant or consented to by any user in ' +
      'the tenant. You may have sent your authentication request to the wrong tenant.',
  );
}

export function assertionOutsideValidTime(
  now: Date,
  notBefore: Date | undefined,
  expiry: Date | undefined,
): EntraError {
  const validFrom = (notBefore ?? new Date(0)).toISOString();
  const expiresAt = expiry ? expiry.toISOString() : 'none';
  return new EntraError(
    401,
    'invalid_client',
    700024,
    `Client assertion is not within its valid time range. Current time: ${now.toISOString()}, assertion valid ` +
      `from ${validFrom}, expiry time of assertion ${expiresAt}. Review the documentation at ` +
      'https://learn.microsoft.com/entra/identity-platform/certificate-credentials .',
  );
}

export function invalidSignature(reason: string): EntraError {
  return new EntraError(
    401,
    'invalid_client',
    700027,
    `Client assertion contains an invalid signature. [Reason - ${reason}]`,
  );
}

export function externalOidcFailed(issuer: string, detail: string): EntraError {
  return new EntraError(
    400,
    'invalid_request',
    50166,
    `Request to External OIDC endpoint failed. Issuer: '${issuer}'. ${detail}`,
  );
}

export function malformedAssertion(detail: string): EntraError {
  return new EntraError(400, 'invalid_request', 50027, `JWT token is invalid or malformed. ${detail}`);
}
