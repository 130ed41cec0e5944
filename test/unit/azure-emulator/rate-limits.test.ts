// The emulator's throttling and its settings: Azure's documented limits, on by default.
import { describe, expect, it } from 'vitest';
import {
  AZURE_RATE_LIMITS,
  applySettingsPatch,
  type EmulatorConfig,
  ficsUnsupportedFor,
  initialSettings,
  limitsFor,
} from '../../harness/azure-emulator/config.ts';
import { RequestThrottle } from '../../harness/azure-emulator/rate-limits.ts';

const config: EmulatorConfig = {
  port: 0,
  host: '127.0.0.1',
  tlsCertFile: 'x',
  tlsKeyFile: 'x',
  tenantId: '00000000-0000-0000-0000-000000000001',
  tokenLifetimeSeconds: 3600,
};
const keys = (resource: string, subscription = 'sub-1', tenant = 'tenant') => ({
  tenant,
  subscription,
  resource,
});

describe('emulator settings', () => {
  it("start with Azure's documented read and write limits and its unsupported regions", () => {
    const settings = initialSettings(config);
    expect(settings.rateLimits).toEqual(AZURE_RATE_LIMITS);
    expect(settings.rateLimits).not.toBe(AZURE_RATE_LIMITS);
    expect(settings.ficsUnsupported.locations).toEqual(['malaysiasouth', 'newzealandnorth']);
  });

  it('lift the limits for one subscription without touching the others', () => {
    const settings = initialSettings(config);
    applySettingsPatch(settings, {
      rateLimitsBySubscription: { 'SUB-A': {}, 'sub-b': { list: { perResource: 1 } } },
    });
    applySettingsPatch(settings, { rateLimitsBySubscription: { 'sub-b': null } });
    expect(limitsFor(settings, 'sub-a')).toEqual({});
    expect(limitsFor(settings, 'sub-b')).toEqual(AZURE_RATE_LIMITS);
    expect(() => applySettingsPatch(settings, { rateLimits: { lists: {} } })).toThrow(
      /unknown rateLimits operation/,
    );
    expect(() => applySettingsPatch(settings, { rateLimits: { get: { perResource: 0 } } })).toThrow(/> 0/);
  });

  it('make FIC operations unsupported by region (spelled either way), subscription or identity', () => {
    const settings = initialSettings(config);
    const identity = (location: string, subscriptionId = 's', armId = '/subscriptions/s/x') => ({
      location,
      subscriptionId,
      armId,
    });
    expect(ficsUnsupportedFor(settings, identity('Malaysia South'))).toBe(true);
    expect(ficsUnsupportedFor(settings, identity('westeurope'))).toBe(false);
    applySettingsPatch(settings, {
      ficsUnsupported: { subscriptions: ['S2'], identities: ['/SUBSCRIPTIONS/S/Y'] },
    });
    expect(settings.ficsUnsupported.locations).toEqual(['malaysiasouth', 'newzealandnorth']);
    expect(ficsUnsupportedFor(settings, identity('westeurope', 's2'))).toBe(true);
    expect(ficsUnsupportedFor(settings, identity('westeurope', 's', '/subscriptions/s/y'))).toBe(true);
  });
});

describe('RequestThrottle', () => {
  it('allows one LIST per identity per 4 s, and answers the wait in whole seconds', () => {
    const throttle = new RequestThrottle();
    expect(throttle.take('list', AZURE_RATE_LIMITS.list, keys('id-a'), 0)).toEqual({ allowed: true });
    expect(throttle.take('list', AZURE_RATE_LIMITS.list, keys('id-a'), 100)).toEqual({
      allowed: false,
      retryAfterSeconds: 4,
      by: 'list/perResource',
    });
    expect(throttle.take('list', AZURE_RATE_LIMITS.list, keys('ID-A'), 3999).allowed).toBe(false);
    expect(throttle.take('list', AZURE_RATE_LIMITS.list, keys('id-a'), 4000).allowed).toBe(true);
    // GETs have their own bucket.
    expect(throttle.take('get', AZURE_RATE_LIMITS.get, keys('id-a'), 4000).allowed).toBe(true);
  });

  it('allows a second of burst per subscription and per tenant, then their rates', () => {
    const throttle = new RequestThrottle();
    const at0 = Array.from({ length: 6 }, (_, i) =>
      throttle.take('list', AZURE_RATE_LIMITS.list, keys(`id-${i}`), 0),
    );
    expect(at0.map((a) => a.allowed)).toEqual([true, true, true, true, true, false]);
    expect(at0[5]).toMatchObject({ by: 'list/perSubscription', retryAfterSeconds: 1 });
    // 200 ms later one more LIST is allowed in the subscription (5/s).
    expect(throttle.take('list', AZURE_RATE_LIMITS.list, keys('id-9'), 200).allowed).toBe(true);
    // Across subscriptions, the tenant's 15/s: three subscriptions of five each fill it.
    const tenant = new RequestThrottle();
    const spread = Array.from({ length: 16 }, (_, i) =>
      tenant.take('list', AZURE_RATE_LIMITS.list, keys(`id-${i}`, `sub-${i % 4}`), 0),
    );
    expect(spread.filter((a) => a.allowed)).toHaveLength(15);
    expect(spread[15]).toMatchObject({ allowed: false, by: 'list/perTenant' });
  });

  it('takes nothing from a refused request, and nothing at all without a limit', () => {
    const throttle = new RequestThrottle();
    const limit = { perResource: 1, perSubscription: 1 };
    expect(throttle.take('get', limit, keys('a'), 0).allowed).toBe(true);
    // Refused by the identity's bucket: the subscription's token is not spent on it...
    expect(throttle.take('get', limit, keys('a'), 1000 - 1).allowed).toBe(false);
    // ...so another identity still gets the subscription's token once it refilled.
    expect(throttle.take('get', limit, keys('b'), 1000).allowed).toBe(true);
    for (let i = 0; i < 100; i++) expect(throttle.take('get', undefined, keys('a'), 0).allowed).toBe(true);
  });
});
