// Applies injected fault rules to a request: delay it, and/or answer it with the rule's status in
// the error shape of the surface it hit (ARM envelope or Entra OAuth error).
import { setTimeout as sleep } from 'node:timers/promises';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { sendArmError } from './arm-errors.ts';
import type { EmulatorContext } from './context.ts';
import { entraErrorBody } from './entra-errors.ts';
import { armCodeForStatus } from './faults.ts';

export function faultMiddleware(ctx: EmulatorContext, target: 'arm' | 'entra'): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const path = new URL(req.originalUrl, 'https://x').pathname;
    const rule = ctx.faults.take(target, req.method, path);
    if (!rule) return next();
    if (rule.latencyMs) await sleep(rule.latencyMs);
    if (!rule.status) return next();
    res.locals.injectedFault = rule.status;
    const headers: Record<string, string> = {};
    if (rule.retryAfterSeconds !== undefined)
      headers['Retry-After'] = String(Math.ceil(rule.retryAfterSeconds));
    const message = `Injected fault ${rule.id}: ${req.method} ${path} answered ${rule.status}.`;
    if (target === 'arm') {
      sendArmError(res, rule.status, armCodeForStatus(rule.status), message, headers);
    } else {
      const error = rule.status === 429 || rule.status >= 500 ? 'temporarily_unavailable' : 'invalid_request';
      res
        .status(rule.status)
        .set(headers)
        .json(entraErrorBody(error, `AADSTS90000: ${message}`, [90000]));
    }
  };
}
