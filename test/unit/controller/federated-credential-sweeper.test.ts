// Which federated credentials the sweep takes for orphans (orphanCandidates in
// src/controller/federated-credential-sweeper.ts): only FICs this cluster made (its issuer, a
// ServiceAccount subject, exactly its name for that subject) that no resource binds or records.
// A wrong "yes" deletes a FIC an app or another cluster relies on, so most rows are "no". Pure.
import { describe, expect, it } from 'vitest';
import { BindingIndex, bindingOf } from '../../../src/api/binding-index.ts';
import { ACCESS_KIND } from '../../../src/api/constants.ts';
import type { EntraDatabaseAccessStatus } from '../../../src/api/types.ts';
import { ficName, ficSubject, TOKEN_EXCHANGE_AUDIENCE } from '../../../src/azure/fic-name.ts';
import type { ExistingFic } from '../../../src/azure/fic-plan.ts';
import { credentialId, orphanCandidates } from '../../../src/controller/federated-credential-sweeper.ts';
import { accessBody, IDENTITY } from '../../support/controller-fakes.ts';

const CLUSTER = 'prod';
const ISSUER = 'https://oidc.example/prod';
const X = IDENTITY;
const Y =
  '/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1';

/** A FIC as ARM lists it: by default the one this cluster makes for apps/app. */
function fic(over: Partial<ExistingFic> & { ns?: string; sa?: string } = {}): ExistingFic {
  const ns = over.ns ?? 'apps';
  const sa = over.sa ?? 'app';
  return {
    name: over.name ?? ficName(CLUSTER, ns, sa),
    issuer: over.issuer ?? ISSUER,
    subject: over.subject ?? ficSubject(ns, sa),
    audiences: over.audiences ?? [TOKEN_EXCHANGE_AUDIENCE],
  };
}

interface BindingSpec {
  name?: string;
  namespace?: string;
  sa?: string;
  identity?: string;
  deleting?: boolean;
  status?: EntraDatabaseAccessStatus;
}

function index(...specs: BindingSpec[]): BindingIndex {
  const bindings = new BindingIndex();
  specs.forEach((s, i) => {
    const b = bindingOf(
      accessBody({
        name: s.name ?? `r${i}`,
        namespace: s.namespace ?? 'apps',
        spec: { serviceAccountName: s.sa ?? 'app', identity: { resourceId: s.identity ?? X } },
        ...(s.deleting ? { deleting: true } : {}),
        ...(s.status ? { status: s.status } : {}),
      }),
      ACCESS_KIND,
    );
    if (!b) throw new Error('test builder: bindingOf returned undefined');
    bindings.set(b);
  });
  return bindings;
}

const OURS = ficName(CLUSTER, 'apps', 'app');

describe('orphanCandidates on identity X', () => {
  it('names FICs the way the controller does (the rows below rely on it)', () => {
    expect(OURS).toBe('prod_apps_app');
  });

  it.each<{
    case: string;
    fics: ExistingFic[];
    bindings?: BindingSpec[];
    ask?: string;
    candidates: string[];
  }>([
    { case: 'ours and unowned', fics: [fic()], candidates: [OURS] },
    {
      case: 'ours, named in another case',
      fics: [fic({ name: OURS.toUpperCase() })],
      candidates: [OURS.toUpperCase()],
    },
    {
      case: 'asked with the identity in another casing',
      fics: [fic()],
      ask: X.toUpperCase(),
      candidates: [OURS],
    },
    {
      case: 'ours with a hashed name (a name too long to stay readable)',
      fics: [fic({ ns: 'n'.repeat(63), sa: 's'.repeat(63) })],
      candidates: [ficName(CLUSTER, 'n'.repeat(63), 's'.repeat(63))],
    },
    { case: 'another issuer', fics: [fic({ issuer: 'https://oidc.example/other' })], candidates: [] },
    {
      case: 'our issuer with a trailing slash (not ours: compared exactly)',
      fics: [fic({ issuer: `${ISSUER}/` })],
      candidates: [],
    },
    {
      case: "another cluster's FIC (its name for the same subject)",
      fics: [fic({ name: ficName('staging', 'apps', 'app') })],
      candidates: [],
    },
    {
      case: 'a FIC of no cluster name (hand-made in the portal)',
      fics: [fic({ name: 'my-app-fic' })],
      candidates: [],
    },
    {
      case: 'our name for another ServiceAccount than its subject',
      fics: [fic({ name: ficName(CLUSTER, 'apps', 'other') })],
      candidates: [],
    },
    {
      case: 'our name, a subject in another namespace',
      fics: [fic({ subject: ficSubject('other', 'app') })],
      candidates: [],
    },
    {
      case: 'a subject that is not a ServiceAccount',
      fics: [fic({ subject: 'repo:org/app:ref:refs/heads/main' })],
      candidates: [],
    },
    {
      case: 'a ServiceAccount subject with too few parts',
      fics: [fic({ subject: 'system:serviceaccount:apps' })],
      candidates: [],
    },
    {
      case: 'a ServiceAccount subject with too many parts',
      fics: [fic({ subject: 'system:serviceaccount:apps:app:x' })],
      candidates: [],
    },
    {
      case: 'a ServiceAccount subject with an empty name',
      fics: [fic({ subject: 'system:serviceaccount:apps:' })],
      candidates: [],
    },
    { case: 'a binding of the ServiceAccount to X owns it', fics: [fic()], bindings: [{}], candidates: [] },
    {
      case: 'a binding of the ServiceAccount to X, cased as ARM returns it, owns it',
      fics: [fic()],
      bindings: [{ identity: X.replace('resourceGroups', 'resourcegroups') }],
      candidates: [],
    },
    {
      case: 'a binding being deleted still owns it',
      fics: [fic()],
      bindings: [{ deleting: true }],
      candidates: [],
    },
    {
      case: 'a binding of the ServiceAccount to another identity does not',
      fics: [fic()],
      bindings: [{ identity: Y }],
      candidates: [OURS],
    },
    {
      case: 'a binding of another ServiceAccount to X does not',
      fics: [fic()],
      bindings: [{ sa: 'other' }],
      candidates: [OURS],
    },
    {
      case: 'a binding in another namespace does not',
      fics: [fic()],
      bindings: [{ namespace: 'other' }],
      candidates: [OURS],
    },
    {
      case: 'a resource that records it as stale on X owns it',
      fics: [fic()],
      bindings: [
        {
          sa: 'moved-on',
          identity: Y,
          status: {
            staleFederatedCredentials: [
              { identityResourceId: X, name: OURS, subject: ficSubject('apps', 'app') },
            ],
          },
        },
      ],
      candidates: [],
    },
    {
      case: 'a stale record without a subject, in another case, owns it',
      fics: [fic()],
      bindings: [
        {
          sa: 'moved-on',
          status: {
            staleFederatedCredentials: [{ identityResourceId: X.toUpperCase(), name: OURS.toUpperCase() }],
          },
        },
      ],
      candidates: [],
    },
    {
      case: 'a resource that records it in force on X owns it',
      fics: [fic()],
      bindings: [
        {
          sa: 'moved-on',
          identity: Y,
          status: { federatedCredential: { name: OURS, identityResourceId: X } },
        },
      ],
      candidates: [],
    },
    {
      case: 'a FIC in force recorded on the status identity (no identityResourceId) owns it',
      fics: [fic()],
      bindings: [
        {
          sa: 'moved-on',
          identity: Y,
          status: { identity: { resourceId: X }, federatedCredential: { name: OURS } },
        },
      ],
      candidates: [],
    },
    {
      case: 'a record of the same name on another identity does not',
      fics: [fic()],
      bindings: [
        {
          sa: 'moved-on',
          identity: Y,
          status: { staleFederatedCredentials: [{ identityResourceId: Y, name: OURS }] },
        },
      ],
      candidates: [OURS],
    },
    {
      case: 'a record of another name on X does not',
      fics: [fic()],
      bindings: [
        {
          sa: 'moved-on',
          status: { staleFederatedCredentials: [{ identityResourceId: X, name: 'prod_apps_other' }] },
        },
      ],
      candidates: [OURS],
    },
    {
      case: 'a mixed list: only the unowned ones of ours, in list order',
      fics: [
        fic({ sa: 'gone-1' }),
        fic(),
        fic({ name: 'hand-made', sa: 'gone-2' }),
        fic({ sa: 'gone-2' }),
        fic({ sa: 'gone-3', issuer: 'https://elsewhere' }),
      ],
      bindings: [{}],
      candidates: ['prod_apps_gone-1', 'prod_apps_gone-2'],
    },
    { case: 'no FICs', fics: [], bindings: [{}], candidates: [] },
  ])('$case → $candidates', ({ fics, bindings = [], ask, candidates }) => {
    const found = orphanCandidates(ask ?? X, fics, {
      bindings: index(...bindings),
      clusterName: CLUSTER,
      issuer: ISSUER,
    });
    expect(found.map((c) => c.name)).toEqual(candidates);
  });

  it('returns each candidate with the namespace and ServiceAccount of its subject', () => {
    const found = orphanCandidates(X, [fic({ ns: 'shop', sa: 'orders' })], {
      bindings: new BindingIndex(),
      clusterName: CLUSTER,
      issuer: ISSUER,
    });
    expect(found).toEqual([{ name: 'prod_shop_orders', namespace: 'shop', serviceAccount: 'orders' }]);
  });

  it('a cluster without a name: `<namespace>_<sa>` is its name, a prefixed one is not', () => {
    const context = { bindings: new BindingIndex(), clusterName: '', issuer: ISSUER };
    expect(orphanCandidates(X, [fic({ name: 'apps_app' })], context).map((c) => c.name)).toEqual([
      'apps_app',
    ]);
    expect(orphanCandidates(X, [fic()], context)).toEqual([]);
  });
});

describe('credentialId', () => {
  it.each([
    { identity: X, name: 'prod_apps_app', id: `${X}/federatedIdentityCredentials/prod_apps_app` },
    { identity: X.toLowerCase(), name: 'F', id: `${X.toLowerCase()}/federatedIdentityCredentials/F` },
  ])('$name on $identity', ({ identity, name, id }) => {
    expect(credentialId(identity, name)).toBe(id);
  });
});
