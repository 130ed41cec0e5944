// JSON logs (pino). Log structured fields only — uid, kind, namespace, name, reason — never an
// object, a token or a request body: those can carry service-account tokens and Entra tokens.
import { type Logger, pino } from 'pino';
import type { LogLevel } from '../config.ts';

export type { Logger };

export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({
    level,
    base: { component: 'entra-access' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Belt and braces: should a field with one of these names ever be logged, it is censored.
    redact: {
      paths: [
        'token',
        'password',
        'accessToken',
        'access_token',
        'client_assertion',
        '*.token',
        '*.password',
      ],
      censor: '[redacted]',
    },
  });
}
