// Step ServiceAccountReady with a fake CoreV1Api: creates a missing ServiceAccount, patches
// missing annotations, reports a client-id set by someone else, and keeps saying Created while
// the ServiceAccount it created is untouched (a steady resync writes no status).
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Reason, WI_CLIENT_ID_ANNOTATION, WI_TENANT_ID_ANNOTATION } from '../../../src/api/constants.ts';
import type { EntraDatabaseAccess, EntraDatabaseAccessStatus } from '../../../src/api/types.ts';
import type { StepContext } from '../../../src/controller/reconcile/object-reconciler.ts';
import type { IdentityState } from '../../../src/controller/steps/binding-object.ts';
import { serviceAccountStep } from '../../../src/controller/steps/service-account.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { accessBody, IDENTITY } from '../../support/controller-fakes.ts';

const identity = { resourceId: IDENTITY, clientId: 'client-1', principalId: 'p', tenantId: 'tenant-1' };

function run(serviceAccount: k8s.V1ServiceAccount | undefined, status?: EntraDatabaseAccessStatus) {
  const calls: string[] = [];
  const core = {
    readNamespacedServiceAccount: async () => {
      if (!serviceAccount) throw Object.assign(new Error('HTTP-Code: 404'), { code: 404 });
      return serviceAccount;
    },
    createNamespacedServiceAccount: async () => {
      calls.push('create');
      return {};
    },
    patchNamespacedServiceAccount: async () => {
      calls.push('patch');
      return {};
    },
  } as unknown as k8s.CoreV1Api;
  const object = accessBody(status ? { status } : {});
  const context = {
    object,
    ref: { namespace: 'apps', name: 'a' },
    log: createLogger('error'),
    fields: {},
    state: { identity },
    checkpoint: async () => {},
    warn: () => {},
  } as unknown as StepContext<EntraDatabaseAccess, EntraDatabaseAccessStatus, IdentityState>;
  return serviceAccountStep<EntraDatabaseAccess, EntraDatabaseAccessStatus, IdentityState>({ core })
    .run(context)
    .then((result) => ({ result, calls }));
}

const annotated = (clientId: string, tenantId = 'tenant-1'): k8s.V1ServiceAccount => ({
  metadata: {
    name: 'app',
    annotations: { [WI_CLIENT_ID_ANNOTATION]: clientId, [WI_TENANT_ID_ANNOTATION]: tenantId },
  },
});

const condition = (reason: string, message: string): EntraDatabaseAccessStatus => ({
  conditions: [
    {
      type: 'ServiceAccountReady',
      status: 'True',
      reason,
      message,
      lastTransitionTime: '2026-01-01T00:00:00Z',
    },
  ],
});

describe('ServiceAccountReady', () => {
  it.each<{
    case: string;
    serviceAccount: k8s.V1ServiceAccount | undefined;
    status?: EntraDatabaseAccessStatus;
    reason: string;
    calls: string[];
  }>([
    {
      case: 'a missing ServiceAccount is created',
      serviceAccount: undefined,
      reason: Reason.Created,
      calls: ['create'],
    },
    {
      case: 'the one it created, untouched, still reads Created',
      serviceAccount: annotated('client-1'),
      status: condition(Reason.Created, 'created ServiceAccount app'),
      reason: Reason.Created,
      calls: [],
    },
    {
      case: 'an existing one already annotated is UpToDate',
      serviceAccount: annotated('client-1'),
      reason: Reason.UpToDate,
      calls: [],
    },
    {
      case: 'a missing tenant-id is patched in, and the condition says UpToDate',
      serviceAccount: annotated('client-1', ''),
      status: condition(Reason.Created, 'created ServiceAccount app'),
      reason: Reason.UpToDate,
      calls: ['patch'],
    },
    {
      case: "someone else's client-id is left and reported",
      serviceAccount: annotated('someone-else'),
      reason: Reason.ServiceAccountClientIdConflict,
      calls: [],
    },
  ])('$case', async ({ serviceAccount, status, reason, calls }) => {
    const outcome = await run(serviceAccount, status);
    expect(outcome.result).toMatchObject({ reason });
    expect(outcome.calls).toEqual(calls);
  });
});
