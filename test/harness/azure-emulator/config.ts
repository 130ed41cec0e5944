// The emulator's start-up configuration (read once from the JSON file named on the command line)
// and its runtime settings (changed by tests through POST /_emulator/config).
import { readFileSync } from 'node:fs';

export interface EmulatorConfig {
  port: number;
  host: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  tenantId: string;
  tokenLifetimeSeconds: number;
  /** Port of the Blob data plane (blob-routes.ts); 0 or absent = any. */
  blobPort?: number;
  /**
   * The local test PostgreSQL, fronted by the emulator as Azure fronts a flexible server:
   * `adminUrl` (superuser, for principal look-ups) and `upstreamSocket` (the real server's Unix
   * socket, trusted locally). Enables the PostgreSQL gateway on `gatewayPort` (0 = any).
   */
  postgres?: { adminUrl: string; upstreamSocket: string; gatewayPort: number };
  /**
   * Also answer as Entra's well-known authority host (login.microsoftonline.com): the same routes
   * on `host`:`port` (443) with a certificate for those names, so a client in a sandbox whose
   * /etc/hosts sends the name here runs its SDK's default path, instance discovery included
   * (docs/design.md §7). Needs root for port 443; a loopback address of its own keeps it apart.
   */
  wellKnown?: { host: string; port: number; tlsCertFile: string; tlsKeyFile: string };
}

/** The ARM operations Azure throttles, as its table names them. */
export const THROTTLED_OPERATIONS = ['createOrUpdate', 'get', 'list', 'delete'] as const;
export type ThrottledOperation = (typeof THROTTLED_OPERATIONS)[number];

/** Requests per second one operation may make at each scope; a scope left out is not limited. */
export interface OperationLimit {
  perTenant?: number;
  perSubscription?: number;
  /** Per managed identity: its own GET, and the GETs, LISTs, PUTs and DELETEs of its FICs. */
  perResource?: number;
}

/** Limits by operation; an operation left out is not limited. */
export type RateLimits = Partial<Record<ThrottledOperation, OperationLimit>>;

/**
 * Azure's documented limits for user-assigned managed identities (learn.microsoft.com
 * entra/workload-id/workload-identity-federation-considerations, "Throttling limits"), in requests
 * per second per tenant / subscription / resource: create or update 10 / 2 / 0.25, get 30 / 10 /
 * 0.5, list 15 / 5 / 0.25, delete 10 / 2 / 0.25; 429 past them. On by default (docs/design.md §7):
 * every test and the benchmark run against them unless they opt out and say why.
 *
 * Where the table leaves room, the emulator reads it the stricter way: "get" counts the identity's
 * own GET and the GETs of its FICs against one bucket per identity (the resource), and the
 * operations of one identity's FICs count against the identity.
 */
export const AZURE_RATE_LIMITS: Readonly<Required<RateLimits>> = Object.freeze({
  createOrUpdate: { perTenant: 10, perSubscription: 2, perResource: 0.25 },
  get: { perTenant: 30, perSubscription: 10, perResource: 0.5 },
  list: { perTenant: 15, perSubscription: 5, perResource: 0.25 },
  delete: { perTenant: 10, perSubscription: 2, perResource: 0.25 },
});

/**
 * Regions Azure documents as not supporting FICs on user-assigned identities (same page,
 * "Unsupported regions"): every FIC operation on an identity there answers 405.
 */
export const FIC_UNSUPPORTED_LOCATIONS: readonly string[] = ['malaysiasouth', 'newzealandnorth'];

/**
 * Where FIC operations answer 405 "Support for federated identity credentials not enabled": the
 * identity's location is listed, or its subscription, or the identity itself (its ARM id).
 * Compared case-insensitively (locations also without spaces: "Malaysia South").
 */
export interface FicsUnsupported {
  locations: string[];
  subscriptions: string[];
  identities: string[];
}

/**
 * ARM's own request limits, which apply to Microsoft.Authorization (role assignments and role
 * definitions) as to every resource provider (learn.microsoft.com/azure/azure-resource-manager/
 * management/request-limits-and-throttling, "Regional throttling and token bucket algorithm"): per
 * subscription and per calling principal, a token bucket of `bucketSize` refilled at
 * `refillPerSecond`; all principals together get 15 times that per subscription. Microsoft
 * documents no tighter limit of its own for Microsoft.Authorization.
 */
export interface ArmBucket {
  bucketSize: number;
  refillPerSecond: number;
}

export const ARM_REQUEST_OPERATIONS = ['reads', 'writes', 'deletes'] as const;
export type ArmRequestOperation = (typeof ARM_REQUEST_OPERATIONS)[number];
export type ArmRequestLimits = Partial<Record<ArmRequestOperation, ArmBucket>>;

export const ARM_REQUEST_LIMITS: Readonly<Required<ArmRequestLimits>> = Object.freeze({
  reads: { bucketSize: 250, refillPerSecond: 25 },
  writes: { bucketSize: 200, refillPerSecond: 10 },
  deletes: { bucketSize: 200, refillPerSecond: 10 },
});

/** ARM's global subscription limit: 15 times one principal's, across all principals. */
export const ARM_GLOBAL_LIMIT_FACTOR = 15;

/** Knobs a test may turn while the emulator runs. */
export interface RuntimeSettings {
  writeLatencyMs: number;
  tokenLifetimeSeconds: number;
  /** Per-application overrides, so one test can use short-lived tokens without affecting others. */
  tokenLifetimeSecondsByClientId: Record<string, number>;
  ficPropagationSeconds: number;
  /** Default AZURE_RATE_LIMITS; a patch replaces it whole (`{}`: no limit at all). */
  rateLimits: RateLimits;
  /**
   * Limits for the requests of one subscription (lower-cased id) instead of `rateLimits`, tenant
   * scope included, so a test sharing the emulator can opt out for its own subscription only. A
   * patch sets the subscriptions it names (null removes one) and keeps the others.
   */
  rateLimitsBySubscription: Record<string, RateLimits>;
  /**
   * Default: the documented unsupported regions, no subscription, no identity. A patch replaces
   * the lists it gives and keeps the others.
   */
  ficsUnsupported: FicsUnsupported;
  /**
   * Seconds a new identity's service principal stays unknown to a role assignment PUT without
   * `principalType` (PrincipalNotFound, Azure's replication delay); default 30, so code that leaves
   * principalType out meets the error. With `principalType` set Azure mostly skips the lookup:
   * `principalReplicationSecondsWithType`, default 0, models the cases where it still fails.
   */
  principalReplicationSeconds: number;
  principalReplicationSecondsWithType: number;
  /**
   * Seconds before a role assignment made or removed through ARM takes effect (Azure: up to 10
   * minutes); default 0. Seeded assignments count at once.
   */
  roleAssignmentPropagationSeconds: number;
  /** Azure's fixed 4,000 per subscription (RoleAssignmentLimitExceeded past it). */
  roleAssignmentsPerSubscription: number;
  /** ARM_REQUEST_LIMITS for Microsoft.Authorization requests by default; `{}` lifts them. */
  authorizationRateLimits: ArmRequestLimits;
}

/** What POST /_emulator/config takes (see applySettingsPatch). */
export type RuntimeSettingsPatch = Partial<
  Omit<RuntimeSettings, 'rateLimitsBySubscription' | 'ficsUnsupported'>
> & {
  rateLimitsBySubscription?: Record<string, RateLimits | null>;
  ficsUnsupported?: Partial<FicsUnsupported>;
};

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function fail(message: string): never {
  throw new Error(`azure-emulator config: ${message}`);
}

function nonNegative(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    fail(`${name} must be a number >= 0`);
  return value;
}

export function parseConfig(raw: unknown): EmulatorConfig {
  if (typeof raw !== 'object' || raw === null) fail('expected a JSON object');
  const c = raw as Record<string, unknown>;
  const text = (name: string): string => {
    const v = c[name];
    if (typeof v !== 'string' || v === '') fail(`${name} must be a non-empty string`);
    return v;
  };
  const tenantId = text('tenantId');
  if (!GUID.test(tenantId)) fail('tenantId must be a GUID');
  const config: EmulatorConfig = {
    port: c.port === undefined ? 0 : nonNegative(c.port, 'port'),
    host: c.host === undefined ? '127.0.0.1' : text('host'),
    tlsCertFile: text('tlsCertFile'),
    tlsKeyFile: text('tlsKeyFile'),
    tenantId,
    tokenLifetimeSeconds:
      c.tokenLifetimeSeconds === undefined
        ? 3600
        : nonNegative(c.tokenLifetimeSeconds, 'tokenLifetimeSeconds'),
  };
  if (c.blobPort !== undefined) config.blobPort = nonNegative(c.blobPort, 'blobPort');
  if (c.postgres !== undefined) {
    const p = c.postgres as Record<string, unknown>;
    if (typeof p.adminUrl !== 'string' || typeof p.upstreamSocket !== 'string') {
      fail('postgres needs adminUrl and upstreamSocket strings');
    }
    config.postgres = {
      adminUrl: p.adminUrl,
      upstreamSocket: p.upstreamSocket,
      gatewayPort: p.gatewayPort === undefined ? 0 : nonNegative(p.gatewayPort, 'postgres.gatewayPort'),
    };
  }
  if (c.wellKnown !== undefined) {
    const w = c.wellKnown as Record<string, unknown>;
    if (typeof w.host !== 'string' || typeof w.tlsCertFile !== 'string' || typeof w.tlsKeyFile !== 'string') {
      fail('wellKnown needs host, tlsCertFile and tlsKeyFile strings');
    }
    config.wellKnown = {
      host: w.host,
      port: w.port === undefined ? 443 : nonNegative(w.port, 'wellKnown.port'),
      tlsCertFile: w.tlsCertFile,
      tlsKeyFile: w.tlsKeyFile,
    };
  }
  return config;
}

export function loadConfig(file: string): EmulatorConfig {
  return parseConfig(JSON.parse(readFileSync(file, 'utf8')));
}

export function initialSettings(config: EmulatorConfig): RuntimeSettings {
  return {
    writeLatencyMs: 0,
    tokenLifetimeSeconds: config.tokenLifetimeSeconds,
    tokenLifetimeSecondsByClientId: {},
    ficPropagationSeconds: 0,
    rateLimits: structuredClone(AZURE_RATE_LIMITS),
    rateLimitsBySubscription: {},
    ficsUnsupported: { locations: [...FIC_UNSUPPORTED_LOCATIONS], subscriptions: [], identities: [] },
    principalReplicationSeconds: 30,
    principalReplicationSecondsWithType: 0,
    roleAssignmentPropagationSeconds: 0,
    roleAssignmentsPerSubscription: 4000,
    authorizationRateLimits: structuredClone(ARM_REQUEST_LIMITS),
  };
}

/** Validates an ArmRequestLimits object from the control API. */
export function parseArmRequestLimits(raw: unknown, name: string): ArmRequestLimits {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(`${name} must be an object of operation (reads, writes, deletes) to bucket`);
  const limits: ArmRequestLimits = {};
  for (const [operation, value] of Object.entries(raw)) {
    if (!(ARM_REQUEST_OPERATIONS as readonly string[]).includes(operation))
      throw new Error(`unknown ${name} operation "${operation}" (${ARM_REQUEST_OPERATIONS.join(', ')})`);
    if (value === undefined || value === null) continue;
    const v = value as Record<string, unknown>;
    const known = ['bucketSize', 'refillPerSecond'];
    if (typeof value !== 'object' || Object.keys(v).some((k) => !known.includes(k)))
      throw new Error(`${name}.${operation} must be {bucketSize, refillPerSecond}`);
    for (const k of known) {
      const n = v[k];
      if (typeof n !== 'number' || !Number.isFinite(n) || !(n > 0))
        throw new Error(`${name}.${operation}.${k} must be a number > 0`);
    }
    limits[operation as ArmRequestOperation] = {
      bucketSize: v.bucketSize as number,
      refillPerSecond: v.refillPerSecond as number,
    };
  }
  return limits;
}

/** Validates a RateLimits object from the control API. */
export function parseRateLimits(raw: unknown, name: string): RateLimits {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(`${name} must be an object of operation to limits`);
  const limits: RateLimits = {};
  for (const [operation, value] of Object.entries(raw)) {
    if (!(THROTTLED_OPERATIONS as readonly string[]).includes(operation))
      throw new Error(`unknown ${name} operation "${operation}" (${THROTTLED_OPERATIONS.join(', ')})`);
    if (value === undefined || value === null) continue;
    if (typeof value !== 'object' || Array.isArray(value))
      throw new Error(`${name}.${operation} must be an object`);
    const limit: OperationLimit = {};
    for (const [scope, rate] of Object.entries(value as Record<string, unknown>)) {
      if (scope !== 'perTenant' && scope !== 'perSubscription' && scope !== 'perResource')
        throw new Error(
          `unknown ${name}.${operation} scope "${scope}" (perTenant, perSubscription, perResource)`,
        );
      if (rate === undefined || rate === null) continue;
      if (typeof rate !== 'number' || !(rate > 0) || !Number.isFinite(rate))
        throw new Error(`${name}.${operation}.${scope} must be a number > 0`);
      limit[scope] = rate;
    }
    limits[operation as ThrottledOperation] = limit;
  }
  return limits;
}

function stringList(raw: unknown, name: string): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.some((v) => typeof v !== 'string' || v === ''))
    throw new Error(`${name} must be an array of non-empty strings`);
  return raw as string[];
}

/** The limits that apply to a request in `subscriptionId`. */
export function limitsFor(settings: RuntimeSettings, subscriptionId: string): RateLimits {
  return settings.rateLimitsBySubscription[subscriptionId.toLowerCase()] ?? settings.rateLimits;
}

/** Whether FIC operations on this identity answer 405 (see FicsUnsupported). */
export function ficsUnsupportedFor(
  settings: RuntimeSettings,
  identity: { subscriptionId: string; location: string; armId: string },
): boolean {
  const { locations, subscriptions, identities } = settings.ficsUnsupported;
  const region = (text: string) => text.toLowerCase().replace(/\s+/g, '');
  return (
    locations.some((l) => region(l) === region(identity.location)) ||
    subscriptions.some((s) => s.toLowerCase() === identity.subscriptionId.toLowerCase()) ||
    identities.some((i) => i.toLowerCase() === identity.armId.toLowerCase())
  );
}

/**
 * Validates a patch from the control API and applies it. Throws with a readable message on bad
 * input so the test that sent it fails loudly instead of running with a silently ignored knob.
 */
export function applySettingsPatch(settings: RuntimeSettings, patch: unknown): void {
  if (typeof patch !== 'object' || patch === null) throw new Error('config patch must be a JSON object');
  const p = patch as Record<string, unknown>;
  const known = new Set([
    'writeLatencyMs',
    'tokenLifetimeSeconds',
    'tokenLifetimeSecondsByClientId',
    'ficPropagationSeconds',
    'rateLimits',
    'rateLimitsBySubscription',
    'ficsUnsupported',
    'principalReplicationSeconds',
    'principalReplicationSecondsWithType',
    'roleAssignmentPropagationSeconds',
    'roleAssignmentsPerSubscription',
    'authorizationRateLimits',
  ]);
  for (const key of Object.keys(p)) if (!known.has(key)) throw new Error(`unknown config key "${key}"`);
  const next = { ...settings };
  if (p.writeLatencyMs !== undefined) next.writeLatencyMs = nonNegative(p.writeLatencyMs, 'writeLatencyMs');
  if (p.tokenLifetimeSeconds !== undefined) {
    next.tokenLifetimeSeconds = nonNegative(p.tokenLifetimeSeconds, 'tokenLifetimeSeconds');
  }
  if (p.tokenLifetimeSecondsByClientId !== undefined) {
    const byClient = p.tokenLifetimeSecondsByClientId;
    if (typeof byClient !== 'object' || byClient === null) {
      throw new Error('tokenLifetimeSecondsByClientId must be an object of clientId to seconds');
    }
    next.tokenLifetimeSecondsByClientId = Object.fromEntries(
      Object.entries(byClient).map(([clientId, v]) => [
        clientId.toLowerCase(),
        nonNegative(v, `tokenLifetimeSecondsByClientId.${clientId}`),
      ]),
    );
  }
  if (p.ficPropagationSeconds !== undefined) {
    next.ficPropagationSeconds = nonNegative(p.ficPropagationSeconds, 'ficPropagationSeconds');
  }
  if (p.rateLimits !== undefined) next.rateLimits = parseRateLimits(p.rateLimits, 'rateLimits');
  for (const key of [
    'principalReplicationSeconds',
    'principalReplicationSecondsWithType',
    'roleAssignmentPropagationSeconds',
    'roleAssignmentsPerSubscription',
  ] as const) {
    if (p[key] !== undefined) next[key] = nonNegative(p[key], key);
  }
  if (p.authorizationRateLimits !== undefined) {
    next.authorizationRateLimits = parseArmRequestLimits(
      p.authorizationRateLimits,
      'authorizationRateLimits',
    );
  }
  if (p.rateLimitsBySubscription !== undefined) {
    const bySubscription = p.rateLimitsBySubscription;
    if (typeof bySubscription !== 'object' || bySubscription === null || Array.isArray(bySubscription))
      throw new Error('rateLimitsBySubscription must be an object of subscription id to rate limits');
    const merged = { ...settings.rateLimitsBySubscription };
    for (const [subscription, limits] of Object.entries(bySubscription)) {
      if (limits === null) delete merged[subscription.toLowerCase()];
      else
        merged[subscription.toLowerCase()] = parseRateLimits(
          limits,
          `rateLimitsBySubscription.${subscription}`,
        );
    }
    next.rateLimitsBySubscription = merged;
  }
  if (p.ficsUnsupported !== undefined) {
    const f = p.ficsUnsupported;
    if (typeof f !== 'object' || f === null || Array.isArray(f))
      throw new Error('ficsUnsupported must be an object {locations?, subscriptions?, identities?}');
    const known = ['locations', 'subscriptions', 'identities'];
    for (const key of Object.keys(f))
      if (!known.includes(key)) throw new Error(`unknown ficsUnsupported key "${key}"`);
    const r = f as Record<string, unknown>;
    const list = (key: keyof FicsUnsupported) =>
      r[key] === undefined ? settings.ficsUnsupported[key] : stringList(r[key], `ficsUnsupported.${key}`);
    next.ficsUnsupported = {
      locations: list('locations'),
      subscriptions: list('subscriptions'),
      identities: list('identities'),
    };
  }
  Object.assign(settings, next);
}
