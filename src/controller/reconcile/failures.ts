// How an error thrown out of a reconcile step shows on that step's condition (docs/design.md §2:
// every failure ends in a condition with a reason and a message saying what to change). Pure.
import { Reason } from '../../api/constants.ts';
import { findInCauseChain, someInCauseChain } from '../../util/cause-chain.ts';

/** A failure as a condition shows it: the reason and a message saying what to change. */
export interface StepFailure {
  reason: string;
  message: string;
}

/** Which system a step talks to: it decides the reason of an error that brings none. */
export type StepSystem = 'azure' | 'kubernetes' | 'postgres';

const KNOWN_REASONS = new Set<string>(Object.values(Reason));

/** A FIC write waiting for its turn under the operator's own write pacing: no failure at all. */
export function isPacedWrite(error: unknown): boolean {
  return someInCauseChain(error, (e) => (e as { code?: unknown }).code === 'ClientPacing');
}

/** The first error in the chain that carries a known Reason: the thrower's own diagnosis. */
function ownReason(error: unknown): { reason: string; error: Error } | undefined {
  const found = findInCauseChain(error, (e) => {
    const reason = (e as { reason?: unknown }).reason;
    return typeof reason === 'string' && KNOWN_REASONS.has(reason);
  });
  return found ? { reason: (found as { reason: string }).reason, error: found as Error } : undefined;
}

/**
 * Secrets never go into a condition or an Event: bearer tokens, JWTs (an Entra access token is
 * one) and `password=` pairs are masked, whatever library wrote the message.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]')
    .replace(/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[redacted token]')
    .replace(
      /\b(password|access_token|client_assertion)(["']?\s*[=:]\s*["']?)[^\s"'&,;]+/gi,
      '$1$2[redacted]',
    );
}

/** What a Kubernetes API error says, without the response headers and body dump of its message. */
function kubernetesMessage(error: Error): string {
  const e = error as { code?: unknown; body?: unknown };
  if (typeof e.code !== 'number') return error.message;
  let body = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      // not JSON: fall back to the message
    }
  }
  const text = (body as { message?: unknown } | undefined)?.message;
  return `${e.code}: ${typeof text === 'string' ? text : (error.message.split('\n')[1] ?? error.message)}`;
}

/**
 * The condition an error thrown out of a step of `system` gets (undefined: before any step, where
 * only the Kubernetes API is called — the finalizer, the caches). The thrower's own reason wins
 * (the Azure errors carry AzureRequestFailed); else the system decides: Azure →
 * AzureRequestFailed, Kubernetes → KubernetesRequestFailed, PostgreSQL → DatabaseRequestFailed.
 * Undefined for what is no failure: a FIC write waiting for its turn under the operator's own
 * write pacing. Messages are stable across retries (no "retrying in Ns"), so a repeated failure
 * writes no status and sends no second Event.
 */
export function failureOf(error: unknown, system: StepSystem | undefined): StepFailure | undefined {
  if (isPacedWrite(error)) return undefined;
  const own = ownReason(error);
  const cause = own?.error ?? (error instanceof Error ? error : new Error(String(error)));
  let reason: string;
  let message: string;
  if (own) {
    reason = own.reason;
    message = cause.message;
  } else if (system === 'azure') {
    reason = Reason.AzureRequestFailed;
    message = `Azure request failed: ${cause.message}`;
  } else if (system === 'kubernetes') {
    reason = Reason.KubernetesRequestFailed;
    message = `Kubernetes request failed: ${kubernetesMessage(cause)}: check the operator's RBAC and the namespace`;
  } else if (system === 'postgres') {
    reason = Reason.DatabaseRequestFailed;
    message = `PostgreSQL: ${cause.message}`;
  } else {
    reason = Reason.KubernetesRequestFailed;
    message = `Kubernetes request failed: ${kubernetesMessage(cause)}`;
  }
  message = message.replace(/;?\s*retrying in \d+\s*s\.?$/i, '');
  return { reason, message: redactSecrets(message) };
}
