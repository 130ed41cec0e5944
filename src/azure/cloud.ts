// Per-cloud endpoints the operator talks to: the Entra authority it gets tokens from, the ARM
// endpoint it writes federated credentials to, and the scopes it asks tokens for. Pure: the cloud
// name plus optional overrides (sovereign proxies, private endpoints, the test emulator) in, a
// complete validated settings object out.
import type { AzureCloud } from '../config.ts';

export interface CloudSettings {
  cloud: AzureCloud;
  /** Entra authority, with a trailing slash (the form AZURE_AUTHORITY_HOST takes). */
  authorityHost: string;
  /** ARM base URL, without a trailing slash (the SDK appends `/subscriptions/...`). */
  armEndpoint: string;
  /** Scope of ARM tokens. */
  armScope: string;
  /** Scope of the Entra token Azure Database for PostgreSQL accepts as a password. */
  postgresScope: string;
}

export interface CloudOverrides {
  authorityHost?: string;
  armEndpoint?: string;
  /**
   * Defaults to the cloud's ARM scope even when armEndpoint is overridden: a proxy or private
   * endpoint in front of ARM still takes tokens for the cloud's ARM audience.
   */
  armScope?: string;
  postgresScope?: string;
}

export class CloudSettingsError extends Error {
  override name = 'CloudSettingsError';
}

const CLOUDS: Record<AzureCloud, Omit<CloudSettings, 'cloud'>> = {
  AzurePublicCloud: {
    authorityHost: 'https://login.microsoftonline.com/',
    armEndpoint: 'https://management.azure.com',
    armScope: 'https://management.azure.com/.default',
    postgresScope: 'https://ossrdbms-aad.database.windows.net/.default',
  },
  AzureUSGovernment: {
    authorityHost: 'https://login.microsoftonline.us/',
    armEndpoint: 'https://management.usgovcloudapi.net',
    armScope: 'https://management.usgovcloudapi.net/.default',
    postgresScope: 'https://ossrdbms-aad.database.usgovcloudapi.net/.default',
  },
  AzureChinaCloud: {
    authorityHost: 'https://login.chinacloudapi.cn/',
    armEndpoint: 'https://management.chinacloudapi.cn',
    armScope: 'https://management.chinacloudapi.cn/.default',
    postgresScope: 'https://ossrdbms-aad.database.chinacloudapi.cn/.default',
  },
};

/** The authority hosts of the known clouds, which MSAL can validate by instance discovery. */
export function isKnownAuthorityHost(authorityHost: string): boolean {
  const wanted = withTrailingSlash(authorityHost.toLowerCase());
  return Object.values(CLOUDS).some((c) => c.authorityHost === wanted);
}

function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** The Azure SDKs refuse plain http for anything carrying a bearer token, so reject it here. */
function httpsUrl(value: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CloudSettingsError(`${field}: "${value}" is not a URL`);
  }
  if (url.protocol !== 'https:') {
    throw new CloudSettingsError(
      `${field}: expected an https URL (the Azure SDKs refuse http), got "${value}"`,
    );
  }
  if (url.search || url.hash)
    throw new CloudSettingsError(`${field}: "${value}" must not have a query or fragment`);
  return url;
}

function scope(value: string, field: string): string {
  httpsUrl(value, field);
  if (!value.endsWith('/.default')) {
    throw new CloudSettingsError(`${field}: expected a scope ending in /.default, got "${value}"`);
  }
  return value;
}

export function cloudSettings(cloud: AzureCloud, overrides: CloudOverrides = {}): CloudSettings {
  const base = CLOUDS[cloud];
  if (!base) throw new CloudSettingsError(`unknown Azure cloud "${cloud}"`);
  const authorityHost = overrides.authorityHost ?? base.authorityHost;
  const armEndpoint = overrides.armEndpoint ?? base.armEndpoint;
  httpsUrl(authorityHost, 'authorityHost');
  httpsUrl(armEndpoint, 'armEndpoint');
  return {
    cloud,
    authorityHost: withTrailingSlash(authorityHost),
    armEndpoint: armEndpoint.replace(/\/+$/, ''),
    armScope: scope(overrides.armScope ?? base.armScope, 'armScope'),
    postgresScope: scope(overrides.postgresScope ?? base.postgresScope, 'postgresScope'),
  };
}
