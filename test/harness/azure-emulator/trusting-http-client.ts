// Making this test process trust the harness CA for Azure SDK clients.
//
// NODE_EXTRA_CA_CERTS is read once at process start, so a test that creates its CA at run time
// cannot use it. The Azure SDK pipeline (@azure/core-rest-pipeline) takes `tlsOptions`, which its
// Node HTTP client turns into the options of a cached https.Agent; every SDK client and every
// @azure/identity credential accepts pipeline options. So:
//
//   new ManagedServiceIdentityClient(credential, subscriptionId, {
//     endpoint, credentialScopes: ['https://management.azure.com/.default'], ...trustingPipelineOptions(caPem) });
//   new WorkloadIdentityCredential({ authorityHost, disableInstanceDiscovery: true, ...trustingPipelineOptions(caPem) });
//
// The CA is added to Node's bundled roots rather than replacing them, so the options stay harmless
// for clients that also talk to real endpoints.
import { rootCertificates } from 'node:tls';

export interface TrustingPipelineOptions {
  tlsOptions: { ca: string[] };
}

/** Pipeline options (spread into an SDK client's or credential's options) that trust `caPem`. */
export function trustingPipelineOptions(caPem: string | string[]): TrustingPipelineOptions {
  const extra = Array.isArray(caPem) ? caPem : [caPem];
  // One object per call: the SDK caches its https.Agent per tlsOptions object, so reuse the result
  // for many clients where convenient.
  return { tlsOptions: { ca: [...rootCertificates, ...extra] } };
}
