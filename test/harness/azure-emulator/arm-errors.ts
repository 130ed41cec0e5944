// ARM's error envelope, `{"error":{"code","message"}}`, which @azure/core-client turns into a
// RestError with `code` and `statusCode` for the code under test.
import type { Response } from 'express';

export function sendArmError(
  res: Response,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  // For the counters of the routes that count error codes.
  res.locals.armErrorCode = code;
  res.status(status).set(headers).json({ error: { code, message } });
}

export function identityNotFound(res: Response, resourceGroup: string, name: string): void {
  sendArmError(
    res,
    404,
    'ResourceNotFound',
    `The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/${name}' under resource group ` +
      `'${resourceGroup}' was not found.`,
  );
}
