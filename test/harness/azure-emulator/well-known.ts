// Entra's public-cloud authority hosts, which the emulator can answer as (config.ts `wellKnown`),
// and what Entra's instance discovery (GET /common/discovery/instance?api-version=1.1&
// authorization_endpoint=…) says about them. MSAL in every language asks it before the first
// token unless told not to; Entra answers with the aliases of the cloud the endpoint's host
// belongs to, and with AADSTS50049 invalid_instance for a host that is not one of its own.

/** The public cloud's authority host and its aliases, as instance discovery lists them. */
export const PUBLIC_CLOUD_AUTHORITY_HOSTS = [
  'login.microsoftonline.com',
  'login.windows.net',
  'login.microsoft.com',
  'sts.windows.net',
] as const;

/** The authority host apps are given on the public cloud (AZURE_AUTHORITY_HOST). */
export const PUBLIC_AUTHORITY_HOST = 'https://login.microsoftonline.com/';

export const isWellKnownHost = (host: string): boolean =>
  (PUBLIC_CLOUD_AUTHORITY_HOSTS as readonly string[]).includes(host.toLowerCase().replace(/:443$/, ''));

export type InstanceDiscoveryAnswer =
  | { status: 200; body: Record<string, unknown> }
  | { status: 400; body: Record<string, unknown> };

/**
 * Entra's answer to instance discovery for `authorizationEndpoint` (a URL, or absent). The
 * tenant discovery endpoint is on the endpoint's own host, as Entra gives it.
 */
export function instanceDiscovery(authorizationEndpoint: string | undefined): InstanceDiscoveryAnswer {
  let url: URL | undefined;
  try {
    url = authorizationEndpoint ? new URL(authorizationEndpoint) : undefined;
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || !isWellKnownHost(url.host)) {
    return {
      status: 400,
      body: {
        error: 'invalid_instance',
        error_description:
          'AADSTS50049: Unknown or invalid instance. Trace ID: 00000000-0000-0000-0000-000000000000 ' +
          `Correlation ID: 00000000-0000-0000-0000-000000000000 Timestamp: ${new Date().toISOString().replace('T', ' ').slice(0, 19)}Z`,
        error_codes: [50049],
        error_uri: 'https://login.microsoftonline.com/error?code=50049',
      },
    };
  }
  const tenant = url.pathname.split('/').filter(Boolean)[0] ?? 'common';
  return {
    status: 200,
    body: {
      tenant_discovery_endpoint: `https://${url.host}/${tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [
        {
          preferred_network: 'login.microsoftonline.com',
          preferred_cache: 'login.windows.net',
          aliases: [...PUBLIC_CLOUD_AUTHORITY_HOSTS],
        },
      ],
    },
  };
}
