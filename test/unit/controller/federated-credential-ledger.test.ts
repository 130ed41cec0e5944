// The record of federated credentials a resource made (status.federatedCredential and
// status.staleFederatedCredentials), with fakes for the cluster and Azure:
// - after a ServiceAccount or identity change, the new FIC and the old one are both on record
//   before the old one's delete, which the operator's write pacing may hand back to the queue;
// - a change or a deletion arriving in that window removes every FIC on record (before, the one
//   whose delete was handed back was forgotten and stayed in Azure for good);
// - a stale FIC another resource still uses is dropped from the record but not deleted.
import { describe, expect, it } from 'vitest';
import { ConditionType } from '../../../src/api/constants.ts';
import type { EntraDatabaseAccessStatus } from '../../../src/api/types.ts';
import { ArmWritePaced } from '../../../src/azure/arm-errors.ts';
import {
  accessBody,
  IDENTITY,
  namespaceBody,
  reconciler,
  storedStatus,
  world,
} from '../../support/controller-fakes.ts';

const OTHER_IDENTITY = IDENTITY.replace('/id0', '/id1');

/** A Ready status whose FIC trusts ServiceAccount `sa` on `identity`. */
function readyWith(sa: string, identity = IDENTITY): EntraDatabaseAccessStatus {
  return {
    observedGeneration: 1,
    identity: {
      resourceId: identity,
      clientId: 'client-1',
      principalId: 'principal-1',
      tenantId: 'tenant-1',
    },
    federatedCredential: {
      name: `c_apps_${sa}`,
      issuer: 'https://issuer',
      subject: `system:serviceaccount:apps:${sa}`,
      identityResourceId: identity,
    },
    applied: {
      server: 'pg',
      principalId: 'principal-1',
      role: 'app',
      database: 'shop',
      memberOf: ['readers'],
      grants: [],
    },
  };
}

/** A namespace that allows both identities, and ARM resolving the spec's new one. */
const MOVED_TO_OTHER_IDENTITY = {
  namespaces: [namespaceBody('apps', `${IDENTITY},${OTHER_IDENTITY}`)],
  getIdentity: async () => ({
    resourceId: OTHER_IDENTITY,
    clientId: 'client-2',
    principalId: 'principal-2',
    tenantId: 'tenant-1',
  }),
};

const paced = () => {
  throw new ArmWritePaced('DELETE federated credential', 3_000);
};

describe('a ServiceAccount change', () => {
  it('records the new FIC and the old one before deleting the old, and keeps both on record when the delete is handed back', async () => {
    const w = world({
      access: accessBody({ generation: 2, spec: { serviceAccountName: 'app' }, status: readyWith('old') }),
      ensureFic: async () => ({ name: 'c_apps_app', action: 'created' }),
      deleteFic: async () => paced(),
    });
    await expect(reconciler(w)('apps/a')).resolves.toEqual({ requeueAfterMs: 3_000 });
    expect(w.ficDeletes).toEqual([{ identity: IDENTITY, name: 'c_apps_old' }]);
    // Exactly one write, the checkpoint, made before the delete was tried.
    expect(w.statusWrites).toHaveLength(1);
    const status = storedStatus(w);
    expect(status?.federatedCredential).toMatchObject({ name: 'c_apps_app', identityResourceId: IDENTITY });
    expect(status?.staleFederatedCredentials).toEqual([
      { identityResourceId: IDENTITY, name: 'c_apps_old', subject: 'system:serviceaccount:apps:old' },
    ]);
    // The conditions are the next reconcile's to write: a paced write is no failure.
    expect(w.warnings).toEqual([]);
  });

  it('deletes the old FIC on the next pass and clears the record', async () => {
    const w = world({
      access: accessBody({
        generation: 2,
        spec: { serviceAccountName: 'app' },
        status: {
          ...readyWith('app'),
          staleFederatedCredentials: [
            { identityResourceId: IDENTITY, name: 'c_apps_old', subject: 'system:serviceaccount:apps:old' },
          ],
        },
      }),
      ensureFic: async () => ({ name: 'c_apps_app', action: 'unchanged' }),
    });
    await reconciler(w)('apps/a');
    expect(w.ficDeletes).toEqual([{ identity: IDENTITY, name: 'c_apps_old' }]);
    const status = storedStatus(w);
    expect(status?.staleFederatedCredentials).toBeUndefined();
    expect(status?.conditions?.find((c) => c.type === ConditionType.Ready)?.status).toBe('True');
  });

  it('a second change in the window puts both earlier FICs on record, and deletes both', async () => {
    // The first change's checkpoint: c_apps_b in force, c_apps_a stale; now the spec says c.
    const w = world({
      access: accessBody({
        generation: 3,
        spec: { serviceAccountName: 'c' },
        status: {
          ...readyWith('b'),
          staleFederatedCredentials: [
            { identityResourceId: IDENTITY, name: 'c_apps_a', subject: 'system:serviceaccount:apps:a' },
          ],
        },
      }),
      ensureFic: async () => ({ name: 'c_apps_c', action: 'created' }),
    });
    await reconciler(w)('apps/a');
    expect(w.ficDeletes.map((d) => d.name).sort()).toEqual(['c_apps_a', 'c_apps_b']);
    expect(storedStatus(w)?.federatedCredential?.name).toBe('c_apps_c');
    expect(storedStatus(w)?.staleFederatedCredentials).toBeUndefined();
  });

  it('keeps a stale FIC another resource still binds, and drops it from the record', async () => {
    const sibling = accessBody({
      name: 'b',
      created: 500,
      spec: { serviceAccountName: 'old', roleName: 'app' },
    });
    const w = world({
      access: accessBody({ generation: 2, spec: { serviceAccountName: 'app' }, status: readyWith('old') }),
      others: [sibling],
      ensureFic: async () => ({ name: 'c_apps_app', action: 'created' }),
    });
    await reconciler(w)('apps/a');
    expect(w.ficDeletes).toEqual([]);
    expect(storedStatus(w)?.staleFederatedCredentials).toBeUndefined();
    expect(storedStatus(w)?.federatedCredential?.name).toBe('c_apps_app');
  });
});

describe('an identity change', () => {
  it('puts the FIC on the old identity on record as stale and deletes it there', async () => {
    const w = world({
      access: accessBody({
        generation: 2,
        spec: { identity: { resourceId: OTHER_IDENTITY } },
        status: readyWith('app', IDENTITY),
      }),
      ...MOVED_TO_OTHER_IDENTITY,
      ensureFic: async () => ({ name: 'c_apps_app', action: 'created' }),
      deleteFic: async () => paced(),
    });
    await expect(reconciler(w)('apps/a')).resolves.toEqual({ requeueAfterMs: 3_000 });
    expect(w.ficDeletes).toEqual([{ identity: IDENTITY, name: 'c_apps_app' }]);
    const status = storedStatus(w);
    expect(status?.federatedCredential).toMatchObject({
      name: 'c_apps_app',
      identityResourceId: OTHER_IDENTITY,
    });
    expect(status?.staleFederatedCredentials).toEqual([
      { identityResourceId: IDENTITY, name: 'c_apps_app', subject: 'system:serviceaccount:apps:app' },
    ]);
    // The checkpoint records FICs only: the identity (and the role of the old principal, which
    // the database step has not released yet) stay as they were until the reconcile finishes.
    expect(status?.identity?.resourceId).toBe(IDENTITY);
  });
});

describe('a status written by an older operator', () => {
  it('gets its FIC and role tied to their identity in the first write, so a failed identity change loses neither', async () => {
    // Before the record named them, the FIC in force and the role were the status identity's.
    const legacy: EntraDatabaseAccessStatus = {
      identity: {
        resourceId: IDENTITY,
        clientId: 'client-1',
        principalId: 'principal-1',
        tenantId: 'tenant-1',
      },
      federatedCredential: {
        name: 'c_apps_app',
        issuer: 'https://issuer',
        subject: 'system:serviceaccount:apps:app',
      },
      applied: { server: 'pg', role: 'app', database: 'shop', memberOf: ['readers'], grants: [] },
    };
    const w = world({
      access: accessBody({
        generation: 2,
        spec: { identity: { resourceId: OTHER_IDENTITY } },
        status: legacy,
      }),
      ...MOVED_TO_OTHER_IDENTITY,
      ensureFic: async () => {
        throw new Error('socket hang up');
      },
    });
    await expect(reconciler(w)('apps/a')).rejects.toThrow('socket hang up');
    const status = storedStatus(w);
    // The failure write keeps status.identity on the identity in force (the ServiceAccount still
    // carries it), and names what the old one has explicitly.
    expect(status?.identity?.resourceId).toBe(IDENTITY);
    expect(status?.federatedCredential).toMatchObject({ name: 'c_apps_app', identityResourceId: IDENTITY });
    expect(status?.applied).toMatchObject({ role: 'app', principalId: 'principal-1' });

    // Azure answers again: the old FIC goes from the old identity, the old principal's role is released.
    w.access = accessBody({ generation: 2, spec: { identity: { resourceId: OTHER_IDENTITY } }, status });
    w.live = w.access;
    w.ensureFic = async () => ({ name: 'c_apps_app', action: 'created' });
    await reconciler(w)('apps/a');
    expect(w.ficDeletes).toEqual([{ identity: IDENTITY, name: 'c_apps_app' }]);
    expect(w.removed).toHaveLength(1);
    expect(w.removed[0]).toMatchObject({ applied: { role: 'app', principalId: 'principal-1' } });
  });
});

describe('a deletion', () => {
  it('deletes every FIC on record, in force and stale', async () => {
    const status: EntraDatabaseAccessStatus = {
      ...readyWith('app'),
      staleFederatedCredentials: [
        { identityResourceId: IDENTITY, name: 'c_apps_old', subject: 'system:serviceaccount:apps:old' },
        { identityResourceId: OTHER_IDENTITY, name: 'c_apps_app', subject: 'system:serviceaccount:apps:app' },
      ],
    };
    const w = world({ access: accessBody({ deleting: true, status }) });
    await reconciler(w)('apps/a');
    expect(w.ficDeletes).toEqual([
      { identity: IDENTITY, name: 'c_apps_app' },
      { identity: IDENTITY, name: 'c_apps_old' },
      { identity: OTHER_IDENTITY, name: 'c_apps_app' },
    ]);
  });

  it('reports a clean-up failure on the status and keeps the finalizer for the retry', async () => {
    const w = world({
      access: accessBody({ deleting: true, status: readyWith('app') }),
      deleteFic: async () => {
        throw new Error('socket hang up');
      },
    });
    await expect(reconciler(w)('apps/a')).rejects.toThrow('socket hang up');
    const ready = storedStatus(w)?.conditions?.find((c) => c.type === ConditionType.Ready);
    expect(ready).toMatchObject({ status: 'False', reason: 'AzureRequestFailed' });
    expect(ready?.message).toMatch(/^deleting: Azure request failed: socket hang up/);
    expect(w.warnings.map((e) => e.reason)).toEqual(['AzureRequestFailed']);
  });
});
