// The handlers' answer when a lookup fails: a pod is refused (it would start without its identity),
// a ServiceAccount is admitted unchanged (the controller repairs it), never an error.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/observability/logger.ts';
import type { AdmissionRequest } from '../../../src/webhook/admission.ts';
import { createHandlers } from '../../../src/webhook/handlers.ts';
import type { Lookups } from '../../../src/webhook/lookups.ts';

const failing: Lookups = {
  namespace: async () => {
    throw new Error('HTTP-Code: 500');
  },
  serviceAccount: async () => undefined,
  binding: () => undefined,
  azureWorkloadIdentityWebhookExists: async () => false,
  synced: true,
  start: async () => {},
  stop: async () => {},
};

const handlers = createHandlers({
  lookups: failing,
  events: { warning: () => {}, normal: () => {} },
  logger: createLogger('error'),
  settings: {
    ownNamespace: 'entra-access-system',
    injectionMode: 'label',
    extraPodLabels: {},
    tenantId: '',
    authorityHost: 'https://login.microsoftonline.com/',
  },
});

const request = (kind: 'Pod' | 'ServiceAccount'): AdmissionRequest => ({
  uid: `uid-${kind}`,
  kind: { group: '', version: 'v1', kind },
  operation: 'CREATE',
  namespace: 'apps',
  name: 'x',
  object: { metadata: { name: 'x', namespace: 'apps' } },
  dryRun: false,
});

describe('a namespace lookup that fails', () => {
  it('refuses the pod with a reason that says to retry', async () => {
    const result = await handlers.pod.handle(request('Pod'));
    expect(result.outcome).toBe('denied');
    expect(result.response.response.allowed).toBe(false);
    expect(result.response.response.status?.message).toMatch(/could not read namespace apps.*retry/);
  });

  it('admits the ServiceAccount unchanged', async () => {
    const result = await handlers.serviceAccount.handle(request('ServiceAccount'));
    expect(result.outcome).toBe('skipped');
    expect(result.response.response).toMatchObject({ uid: 'uid-ServiceAccount', allowed: true });
    expect(result.response.response.patch).toBeUndefined();
  });
});
