import type { AccessToken, TokenCredential } from '@azure/identity';
import { DefaultAzureCredential, WorkloadIdentityCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { cloudSettings } from '../../../src/azure/cloud.ts';
import {
  CredentialConfigError,
  chooseCredential,
  createOperatorCredential,
  TokenSource,
} from '../../../src/azure/credentials.ts';

const WI_ENV = {
  AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
  AZURE_CLIENT_ID: '11111111-2222-3333-4444-555555555555',
  AZURE_TENANT_ID: '66666666-7777-8888-9999-000000000000',
};

describe('chooseCredential', () => {
  it('picks workload identity when the webhook-injected variables are there', () => {
    expect(chooseCredential(WI_ENV)).toEqual({
      kind: 'workloadIdentity',
      tokenFilePath: WI_ENV.AZURE_FEDERATED_TOKEN_FILE,
      clientId: WI_ENV.AZURE_CLIENT_ID,
      tenantId: WI_ENV.AZURE_TENANT_ID,
    });
  });

  it('falls back to DefaultAzureCredential without a token file', () => {
    expect(chooseCredential({})).toEqual({ kind: 'default' });
    expect(chooseCredential({ AZURE_CLIENT_ID: 'x', AZURE_FEDERATED_TOKEN_FILE: '' })).toEqual({
      kind: 'default',
    });
  });

  it('names what is missing when the token file is there without client or tenant', () => {
    expect(() => chooseCredential({ ...WI_ENV, AZURE_CLIENT_ID: '' })).toThrow(CredentialConfigError);
    expect(() => chooseCredential({ AZURE_FEDERATED_TOKEN_FILE: '/t' })).toThrow(
      /AZURE_CLIENT_ID and AZURE_TENANT_ID are not/,
    );
  });
});

describe('createOperatorCredential', () => {
  it('builds the credential the environment calls for', () => {
    const cloud = cloudSettings('AzurePublicCloud');
    expect(createOperatorCredential({ cloud, env: WI_ENV })).toBeInstanceOf(WorkloadIdentityCredential);
    expect(createOperatorCredential({ cloud, env: {} })).toBeInstanceOf(DefaultAzureCredential);
  });
});

/** A credential that caches its one token, as @azure/identity does, and counts token requests. */
function fakeCredentials() {
  let issued = 0;
  const created: TokenCredential[] = [];
  const createCredential = (): TokenCredential => {
    let cached: AccessToken | undefined;
    const credential: TokenCredential = {
      getToken: async (scopes) => {
        expect(scopes).toBe('https://ossrdbms-aad.database.windows.net/.default');
        cached ??= { token: `token-${++issued}`, expiresOnTimestamp: Date.now() + 3_600_000 };
        return cached;
      },
    };
    created.push(credential);
    return credential;
  };
  return { createCredential, created, issued: () => issued };
}

describe('TokenSource', () => {
  const postgresScope = cloudSettings('AzurePublicCloud').postgresScope;

  it('serves the cached token until invalidated, then a new one', async () => {
    const fake = fakeCredentials();
    const source = new TokenSource({ createCredential: fake.createCredential, postgresScope });
    expect(await source.getPostgresToken()).toBe('token-1');
    expect(await source.getPostgresToken()).toBe('token-1');
    expect(fake.issued()).toBe(1);
    expect(source.invalidate()).toBe(true);
    expect(await source.getPostgresToken()).toBe('token-2');
    expect(fake.created).toHaveLength(2);
  });

  it('refreshes once when many connections report the same refused token', async () => {
    const fake = fakeCredentials();
    const source = new TokenSource({ createCredential: fake.createCredential, postgresScope });
    const refused = await source.getPostgresToken();
    expect([source.invalidate(refused), source.invalidate(refused), source.invalidate(refused)]).toEqual([
      true,
      false,
      false,
    ]);
    expect(await source.getPostgresToken()).toBe('token-2');
    expect(source.invalidate(refused)).toBe(false);
    expect(fake.created).toHaveLength(2);
  });

  it('replaces a credential whose token request failed (MSAL would refuse it for 60 s)', async () => {
    // Like MSAL after a 503: the credential that saw the failure keeps failing.
    let outage = true;
    const created: TokenCredential[] = [];
    const createCredential = (): TokenCredential => {
      let throttled = false;
      const credential: TokenCredential = {
        getToken: async () => {
          if (throttled || outage) {
            throttled = true;
            throw new Error('AADSTS90000: 503');
          }
          return { token: `token-${created.length}`, expiresOnTimestamp: Date.now() + 3_600_000 };
        },
      };
      created.push(credential);
      return credential;
    };
    const source = new TokenSource({ createCredential, postgresScope });
    await expect(source.getPostgresToken()).rejects.toThrow('AADSTS90000');
    outage = false;
    expect(await source.getPostgresToken()).toBe('token-2');
    expect(created).toHaveLength(2);
  });

  it('fails clearly when the credential returns no token', async () => {
    const source = new TokenSource({
      createCredential: () => ({ getToken: async () => null }),
      postgresScope,
    });
    await expect(source.getPostgresToken()).rejects.toThrow(/returned no token/);
  });
});
