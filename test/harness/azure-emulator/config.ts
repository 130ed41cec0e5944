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
  /**
   * The local test PostgreSQL, fronted by the emulator as Azure fronts a flexible server:
   * `adminUrl` (superuser, for principal look-ups) and `upstreamSocket` (the real server's Unix
   * socket, trusted locally). Enables the PostgreSQL gateway on `gatewayPort` (0 = any).
   */
  postgres?: { adminUrl: string; upstreamSocket: string; gatewayPort: number };
}

export interface RateLimits {
  perIdentityWritesPerSecond?: number;
  perSubscriptionWritesPerSecond?: number;
}

/** Knobs a test may turn while the emulator runs. */
export interface RuntimeSettings {
  writeLatencyMs: number;
  tokenLifetimeSeconds: number;
  /** Per-application overrides, so one test can use short-lived tokens without affecting others. */
  tokenLifetimeSecondsByClientId: Record<string, number>;
  ficPropagationSeconds: number;
  rateLimits: RateLimits;
}

export type RuntimeSettingsPatch = Partial<RuntimeSettings>;

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
    rateLimits: {},
  };
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
  if (p.rateLimits !== undefined) {
    if (typeof p.rateLimits !== 'object' || p.rateLimits === null)
      throw new Error('rateLimits must be an object');
    const r = p.rateLimits as Record<string, unknown>;
    const limits: RateLimits = {};
    for (const key of Object.keys(r)) {
      if (key !== 'perIdentityWritesPerSecond' && key !== 'perSubscriptionWritesPerSecond') {
        throw new Error(`unknown rateLimits key "${key}"`);
      }
      const value = r[key];
      if (value === undefined || value === null) continue;
      if (typeof value !== 'number' || !(value > 0))
        throw new Error(`rateLimits.${key} must be a number > 0`);
      limits[key] = value;
    }
    next.rateLimits = limits;
  }
  Object.assign(settings, next);
}
