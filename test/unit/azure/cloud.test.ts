import { describe, expect, it } from 'vitest';
import { CloudSettingsError, cloudSettings, isKnownAuthorityHost } from '../../../src/azure/cloud.ts';

describe('cloudSettings', () => {
  it.each([
    [
      'AzurePublicCloud',
      'https://login.microsoftonline.com/',
      'https://management.azure.com',
      'https://management.azure.com/.default',
      'https://ossrdbms-aad.database.windows.net/.default',
    ],
    [
      'AzureUSGovernment',
      'https://login.microsoftonline.us/',
      'https://management.usgovcloudapi.net',
      'https://management.usgovcloudapi.net/.default',
      'https://ossrdbms-aad.database.usgovcloudapi.net/.default',
    ],
    [
      'AzureChinaCloud',
      'https://login.chinacloudapi.cn/',
      'https://management.chinacloudapi.cn',
      'https://management.chinacloudapi.cn/.default',
      'https://ossrdbms-aad.database.chinacloudapi.cn/.default',
    ],
  ] as const)('%s', (cloud, authorityHost, armEndpoint, armScope, postgresScope) => {
    expect(cloudSettings(cloud)).toEqual({ cloud, authorityHost, armEndpoint, armScope, postgresScope });
  });

  it('applies each override on its own and normalises slashes', () => {
    const settings = cloudSettings('AzurePublicCloud', {
      authorityHost: 'https://127.0.0.1:8443',
      armEndpoint: 'https://127.0.0.1:8443/',
    });
    expect(settings).toEqual({
      cloud: 'AzurePublicCloud',
      authorityHost: 'https://127.0.0.1:8443/',
      armEndpoint: 'https://127.0.0.1:8443',
      // A custom endpoint still takes tokens for the cloud's ARM audience.
      armScope: 'https://management.azure.com/.default',
      postgresScope: 'https://ossrdbms-aad.database.windows.net/.default',
    });
    expect(
      cloudSettings('AzureChinaCloud', { postgresScope: 'https://pg.example/.default' }).postgresScope,
    ).toBe('https://pg.example/.default');
    expect(cloudSettings('AzureChinaCloud', { armScope: 'https://arm.example/.default' }).armScope).toBe(
      'https://arm.example/.default',
    );
  });

  it.each([
    [{ authorityHost: 'http://login.example/' }, /authorityHost: expected an https URL/],
    [{ armEndpoint: 'not a url' }, /armEndpoint: "not a url" is not a URL/],
    [{ armEndpoint: 'https://arm.example/?x=1' }, /must not have a query/],
    [
      { postgresScope: 'https://ossrdbms-aad.database.windows.net' },
      /postgresScope: expected a scope ending in \/\.default/,
    ],
    [{ armScope: 'http://management.azure.com/.default' }, /armScope: expected an https URL/],
  ])('rejects %j', (overrides, message) => {
    expect(() => cloudSettings('AzurePublicCloud', overrides)).toThrow(CloudSettingsError);
    expect(() => cloudSettings('AzurePublicCloud', overrides)).toThrow(message);
  });

  it('rejects an unknown cloud name', () => {
    expect(() => cloudSettings('AzureGermanCloud' as never)).toThrow(/unknown Azure cloud/);
  });
});

describe('isKnownAuthorityHost', () => {
  it('knows the sovereign authorities, with or without a trailing slash, in any case', () => {
    expect(isKnownAuthorityHost('https://login.microsoftonline.com/')).toBe(true);
    expect(isKnownAuthorityHost('https://LOGIN.microsoftonline.us')).toBe(true);
    expect(isKnownAuthorityHost('https://127.0.0.1:8443/')).toBe(false);
  });
});
