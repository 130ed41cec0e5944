// Entra's instance discovery as the emulator answers it when asked as login.microsoftonline.com:
// its own hosts get the public cloud's metadata, any other host AADSTS50049.
import { describe, expect, it } from 'vitest';
import { instanceDiscovery, isWellKnownHost } from '../../../test/harness/azure-emulator/well-known.ts';

describe('instanceDiscovery', () => {
  it.each([
    'https://login.microsoftonline.com/tenant-a/oauth2/v2.0/authorize',
    'https://login.windows.net/tenant-a/oauth2/v2.0/authorize',
    'https://LOGIN.MICROSOFTONLINE.COM:443/tenant-a/oauth2/v2.0/authorize',
  ])('answers the public cloud metadata for %s, its tenant discovery on that host', (endpoint) => {
    const answer = instanceDiscovery(endpoint);
    expect(answer.status).toBe(200);
    const host = new URL(endpoint).host;
    expect(answer.body).toMatchObject({
      tenant_discovery_endpoint: `https://${host}/tenant-a/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [
        {
          preferred_network: 'login.microsoftonline.com',
          preferred_cache: 'login.windows.net',
          aliases: [
            'login.microsoftonline.com',
            'login.windows.net',
            'login.microsoft.com',
            'sts.windows.net',
          ],
        },
      ],
    });
  });

  it.each([
    ['a host that is not Entra', 'https://127.0.0.1:8443/tenant-a/oauth2/v2.0/authorize'],
    ['plain http', 'http://login.microsoftonline.com/tenant-a/oauth2/v2.0/authorize'],
    ['no endpoint', undefined],
    ['not a URL', 'login.microsoftonline.com'],
  ])('refuses %s with invalid_instance (AADSTS50049)', (_what, endpoint) => {
    const answer = instanceDiscovery(endpoint);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'invalid_instance', error_codes: [50049] });
    expect(String(answer.body.error_description)).toMatch(/^AADSTS50049: Unknown or invalid instance/);
  });

  it('knows the well-known hosts with or without the default port', () => {
    expect(isWellKnownHost('login.microsoftonline.com')).toBe(true);
    expect(isWellKnownHost('login.microsoftonline.com:443')).toBe(true);
    expect(isWellKnownHost('login.microsoftonline.com:8443')).toBe(false);
    expect(isWellKnownHost('127.0.0.1:443')).toBe(false);
  });
});
