// The sweep of orphaned FICs end to end with fakes for ARM and the ServiceAccounts: a FIC this
// cluster made that no resource owns is deleted after the grace period, unless its ServiceAccount
// still uses it (carries the identity's client ID) or lists it as left by deletionPolicy Orphan.
import type * as k8s from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { BindingIndex } from '../../../src/api/binding-index.ts';
import { RETAINED_CREDENTIALS_ANNOTATION, WI_CLIENT_ID_ANNOTATION } from '../../../src/api/constants.ts';
import { ficName, ficSubject, TOKEN_EXCHANGE_AUDIENCE } from '../../../src/azure/fic-name.ts';
import type { ExistingFic } from '../../../src/azure/fic-plan.ts';
import {
  credentialId,
  FederatedCredentialSweeper,
} from '../../../src/controller/federated-credential-sweeper.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { IDENTITY } from '../../support/controller-fakes.ts';

const CLUSTER = 'prod';
const ISSUER = 'https://oidc.example/prod';

const fic = (sa: string): ExistingFic => ({
  name: ficName(CLUSTER, 'apps', sa),
  issuer: ISSUER,
  subject: ficSubject('apps', sa),
  audiences: [TOKEN_EXCHANGE_AUDIENCE],
});

const sweepers: FederatedCredentialSweeper[] = [];
afterEach(async () => {
  await Promise.all(sweepers.splice(0).map((s) => s.stop()));
});

/** One sweep of IDENTITY holding `fics`, with these ServiceAccounts in namespace apps. */
async function sweep(fics: ExistingFic[], serviceAccounts: Record<string, Record<string, string>>) {
  const deleted: string[] = [];
  const sweeper = new FederatedCredentialSweeper({
    azure: {
      getIdentity: async () => ({
        resourceId: IDENTITY,
        clientId: 'client-1',
        principalId: 'p',
        tenantId: 't',
      }),
      listFederatedCredentials: async () => fics.filter((f) => !deleted.includes(f.name)),
      deleteFederatedCredential: async (_identity, name) => {
        deleted.push(name);
        return { deleted: true };
      },
    },
    core: {
      readNamespacedServiceAccount: async ({ name }: { name: string }) => {
        const annotations = serviceAccounts[name];
        if (!annotations) throw Object.assign(new Error('HTTP-Code: 404'), { code: 404 });
        return { metadata: { name, annotations } } as k8s.V1ServiceAccount;
      },
    },
    bindings: new BindingIndex(),
    clusterName: CLUSTER,
    issuer: ISSUER,
    logger: createLogger('error'),
    graceMs: 10,
  });
  sweepers.push(sweeper);
  sweeper.start();
  sweeper.observe(IDENTITY, fics);
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return deleted.sort();
}

describe('the sweep of orphaned federated credentials', () => {
  it('deletes an unowned FIC whose ServiceAccount is gone or points at another identity', async () => {
    const deleted = await sweep([fic('gone'), fic('moved')], {
      moved: { [WI_CLIENT_ID_ANNOTATION]: 'other' },
    });
    expect(deleted).toEqual([ficName(CLUSTER, 'apps', 'gone'), ficName(CLUSTER, 'apps', 'moved')].sort());
  });

  it("keeps one whose ServiceAccount still carries the identity's client ID (any case)", async () => {
    expect(await sweep([fic('used')], { used: { [WI_CLIENT_ID_ANNOTATION]: 'CLIENT-1' } })).toEqual([]);
  });

  it('keeps one its ServiceAccount lists as left by deletionPolicy Orphan', async () => {
    const id = credentialId(IDENTITY, ficName(CLUSTER, 'apps', 'kept'));
    expect(
      await sweep([fic('kept')], {
        kept: { [RETAINED_CREDENTIALS_ANNOTATION]: `other,${id.toUpperCase()}` },
      }),
    ).toEqual([]);
  });

  it('never touches a FIC of another cluster or a hand-made one', async () => {
    const foreign = { ...fic('gone'), name: ficName('staging', 'apps', 'gone') };
    const handMade = { ...fic('gone2'), name: 'my-own-fic' };
    expect(await sweep([foreign, handMade], {})).toEqual([]);
  });
});
