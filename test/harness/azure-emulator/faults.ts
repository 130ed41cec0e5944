// Injected faults: tests register rules that delay matching requests and/or answer them with an
// error status, to exercise the retry, backoff and error paths of the code under test.
import { randomUUID } from 'node:crypto';

export type FaultTarget = 'arm' | 'entra' | 'all';

export interface FaultRule {
  id: string;
  method?: string;
  pathContains?: string;
  /** HTTP status to answer with; 0 or absent = only delay, then serve normally. */
  status?: number;
  retryAfterSeconds?: number;
  latencyMs?: number;
  /** Times the rule fires before it retires; absent = unlimited. */
  count?: number;
  target: FaultTarget;
}

export type FaultRuleInput = Omit<FaultRule, 'id' | 'target'> & { id?: string; target?: FaultTarget };

function optionalNumber(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new Error(`fault ${name} must be a number >= ${min}`);
  }
  return value;
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new Error(`fault ${name} must be a string`);
  return value;
}

/** Validates a rule from the control API; throws with a readable message on bad input. */
export function parseFaultRule(raw: unknown): FaultRule {
  if (typeof raw !== 'object' || raw === null) throw new Error('fault rule must be a JSON object');
  const r = raw as Record<string, unknown>;
  const target = r.target ?? 'all';
  if (target !== 'arm' && target !== 'entra' && target !== 'all')
    throw new Error('fault target must be arm|entra|all');
  const status = optionalNumber(r.status, 'status', 0);
  if (status !== undefined && status !== 0 && (status < 100 || status > 599)) {
    throw new Error('fault status must be 0 or an HTTP status');
  }
  const rule: FaultRule = { id: optionalString(r.id, 'id') ?? randomUUID(), target };
  const method = optionalString(r.method, 'method');
  if (method !== undefined) rule.method = method.toUpperCase();
  const pathContains = optionalString(r.pathContains, 'pathContains');
  if (pathContains !== undefined) rule.pathContains = pathContains;
  if (status !== undefined) rule.status = status;
  const retryAfterSeconds = optionalNumber(r.retryAfterSeconds, 'retryAfterSeconds', 0);
  if (retryAfterSeconds !== undefined) rule.retryAfterSeconds = retryAfterSeconds;
  const latencyMs = optionalNumber(r.latencyMs, 'latencyMs', 0);
  if (latencyMs !== undefined) rule.latencyMs = latencyMs;
  const count = optionalNumber(r.count, 'count', 1);
  if (count !== undefined) rule.count = count;
  return rule;
}

export class FaultRules {
  readonly #rules: FaultRule[] = [];

  add(rule: FaultRule): void {
    this.remove(rule.id);
    this.#rules.push(rule);
  }

  remove(id: string): boolean {
    const index = this.#rules.findIndex((r) => r.id === id);
    if (index < 0) return false;
    this.#rules.splice(index, 1);
    return true;
  }

  clear(): void {
    this.#rules.length = 0;
  }

  list(): FaultRule[] {
    return this.#rules.map((r) => ({ ...r }));
  }

  /**
   * The first rule matching the request, consuming one of its shots. Paths match
   * case-insensitively, like ARM itself.
   */
  take(target: 'arm' | 'entra', method: string, path: string): FaultRule | undefined {
    const lowerPath = path.toLowerCase();
    const index = this.#rules.findIndex(
      (r) =>
        (r.target === 'all' || r.target === target) &&
        (r.method === undefined || r.method === method.toUpperCase()) &&
        (r.pathContains === undefined || lowerPath.includes(r.pathContains.toLowerCase())),
    );
    if (index < 0) return undefined;
    const rule = this.#rules[index]!;
    if (rule.count !== undefined) {
      rule.count--;
      if (rule.count <= 0) this.#rules.splice(index, 1);
    }
    return { ...rule };
  }
}

/** ARM error code used for an injected status, so SDK error handling sees familiar codes. */
export function armCodeForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'AuthenticationFailed';
    case 403:
      return 'AuthorizationFailed';
    case 404:
      return 'NotFound';
    case 409:
      return 'Conflict';
    case 429:
      return 'TooManyRequests';
    case 500:
      return 'InternalServerError';
    case 502:
      return 'BadGateway';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'GatewayTimeout';
    default:
      return 'InjectedFault';
  }
}
