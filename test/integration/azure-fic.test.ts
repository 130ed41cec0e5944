// The product's Azure layer (src/azure) against the harness Azure emulator, through the real
// @azure/arm-msi and @azure/identity, with the operator's workload-identity credential.
//
// Tests run in parallel with other files on one emulator: each test uses its own subscription and
// resource group, and scopes fault rules to its resource group with `pathContains`. Emulator
// counters are global, so request counts are asserted on the layer's own ArmStats.
//
// The emulator enforces Azure's read and write limits (its default). The layer here writes faster
// than Azure allows (FAST), so that only the tests about write pacing wait for it: each test's
// subscription lifts the emulator's write limits and keeps its read limits, which the layer's own
// read pacing must stay under (its stats must show no 429 but the injected ones).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TokenCredential } from '@azure/identity';
import * as k8s from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AzureRetryableError,
  FederatedCredentialLimit,
  FederatedCredentialRejected,
  FederatedCredentialsUnsupported,
  IdentityNotFound,
} from '../../src/azure/arm-errors.ts';
import { type CloudSettings, cloudSettings } from '../../src/azure/cloud.ts';
import { createOperatorCredential, TokenSource } from '../../src/azure/credentials.ts';
import { ficName, ficSubject, TOKEN_EXCHANGE_AUDIENCE } from '../../src/azure/fic-name.ts';
import { formatIdentityId } from '../../src/azure/identity-id.ts';
import { KeyedMutex } from '../../src/azure/keyed-mutex.ts';
import {
  LIST_SHARING_WINDOW_MS,
  ManagedIdentities,
  type ManagedIdentitiesOptions,
} from '../../src/azure/managed-identities.ts';
import { AZURE_RATE_LIMITS, AzureEmulatorClient, type FicView } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, uniqueName } from '../harness/context.ts';
import {
  managedIdentityClient,
  operatorCredential,
  serviceAccountToken,
} from '../harness/workload-identity.ts';

const harness = harnessInfo();

/** A lock that does not lock: shows what the per-identity lock prevents. */
class NoLock extends KeyedMutex {
  override run<T>(_key: string, task: () => Promise<T>): Promise<T> {
    return task();
  }
}

/** Fast retries and generous pacing, so only the tests about pacing wait for it. */
const FAST: Partial<ManagedIdentitiesOptions> = {
  retry: { maxAttempts: 6, baseDelayMs: 50, maxDelayMs: 400, maxWaitMs: 5_000 },
  pacing: { perIdentity: { perSecond: 100, burst: 20 }, perSubscription: { perSecond: 100, burst: 20 } },
};

describe.skipIf(!harness)('Azure layer against the emulator', () => {
  const namespace = uniqueName('azfic');
  let kc: k8s.KubeConfig;
  let emulator: AzureEmulatorClient;
  let operator: TokenCredential;
  let cloud: CloudSettings;
  let issuer: string;
  const createdIdentities: string[] = [];

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
    operator = await operatorCredential(harness!, kc);
    cloud = cloudSettings('AzurePublicCloud', {
      authorityHost: harness!.azure.url,
      armEndpoint: harness!.azure.url,
    });
    issuer = harness!.kubernetes.issuer;
  });

  afterAll(async () => {
    for (const id of createdIdentities) await emulator?.deleteIdentity(id).catch(() => {});
    await kc
      ?.makeApiClient(k8s.CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => {});
  });

  /**
   * A subscription and resource group of this test's own, where the emulator keeps Azure's read
   * limits and lifts its write limits (see the file's header).
   */
  async function scope() {
    const where = { subscriptionId: randomUUID(), resourceGroup: uniqueName('rg-fic') };
    await emulator.setConfig({
      rateLimitsBySubscription: {
        [where.subscriptionId]: { get: AZURE_RATE_LIMITS.get, list: AZURE_RATE_LIMITS.list },
      },
    });
    return where;
  }

  async function newIdentity(where?: { subscriptionId: string; resourceGroup: string }, name = 'uami') {
    where ??= await scope();
    const view = await emulator.createIdentity({ ...where, name });
    const resourceId = formatIdentityId({ ...where, name });
    createdIdentities.push(resourceId);
    return { ...view, resourceId, ...where };
  }

  function layer(extra: Partial<ManagedIdentitiesOptions> = {}): ManagedIdentities {
    return new ManagedIdentities({ credential: operator, cloud, ...FAST, ...extra });
  }

  async function ficsOf(resourceId: string): Promise<FicView[]> {
    const all = await emulator.listIdentities();
    const identity = all.find((i) => i.id.toLowerCase() === resourceId.toLowerCase());
    if (!identity) throw new Error(`emulator has no identity ${resourceId}`);
    return identity.federatedIdentityCredentials;
  }

  function spec(serviceAccount: string, audience = TOKEN_EXCHANGE_AUDIENCE) {
    return {
      name: ficName('harness', namespace, serviceAccount),
      issuer,
      subject: ficSubject(namespace, serviceAccount),
      audience,
    };
  }

  it('resolves an identity, and reports a missing one as IdentityNotFound', async () => {
    const identity = await newIdentity();
    const azure = layer();
    expect(await azure.getIdentity(identity.resourceId)).toEqual({
      resourceId: identity.resourceId,
      clientId: identity.clientId,
      principalId: identity.principalId,
      tenantId: harness!.azure.tenantId,
    });
    // ARM ids come back in other casings; any casing resolves.
    expect((await azure.getIdentity(identity.resourceId.toLowerCase())).clientId).toBe(identity.clientId);

    const missing = formatIdentityId({ ...(await scope()), name: 'nobody' });
    const error = await azure.getIdentity(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentityNotFound);
    expect(error).toMatchObject({ resourceId: missing, reason: 'IdentityNotFound' });
    expect((error as Error).message).toMatch(/was not found/);
    await expect(azure.ensureFederatedCredential(missing, spec('a'))).rejects.toBeInstanceOf(
      IdentityNotFound,
    );
    await expect(azure.deleteFederatedCredential(missing, 'x-y-z')).resolves.toEqual({ deleted: false });
  });

  it('creates a FIC, and a second ensure finds it unchanged on the shared list, with no read and no write', async () => {
    const identity = await newIdentity();
    const azure = layer();
    const wanted = spec('orders-api');
    expect(await azure.ensureFederatedCredential(identity.resourceId, wanted)).toEqual({
      name: wanted.name,
      action: 'created',
    });
    expect(azure.stats.snapshot().writes).toBe(1);
    const [fic] = await ficsOf(identity.resourceId);
    expect(fic).toMatchObject({
      name: wanted.name,
      properties: { issuer, subject: wanted.subject, audiences: [TOKEN_EXCHANGE_AUDIENCE] },
    });

    const before = azure.stats.snapshot();
    expect(await azure.ensureFederatedCredential(identity.resourceId, wanted)).toEqual({
      name: wanted.name,
      action: 'unchanged',
    });
    const after = azure.stats.snapshot();
    expect(after.writes - before.writes).toBe(0);
    // The list read for the write, with the write applied to it, is shared for a while.
    expect(after.reads - before.reads).toBe(0);
  });

  it('adopts a FIC made under another name for the same issuer and subject, writing nothing', async () => {
    const identity = await newIdentity();
    const wanted = spec('billing');
    await emulator.putFederatedCredential(identity.resourceId, 'made-by-hand', {
      issuer,
      subject: wanted.subject,
      audiences: [TOKEN_EXCHANGE_AUDIENCE],
    });
    const azure = layer();
    expect(await azure.ensureFederatedCredential(identity.resourceId, wanted)).toEqual({
      name: 'made-by-hand',
      action: 'adopted',
    });
    expect(azure.stats.snapshot().writes).toBe(0);
    expect((await ficsOf(identity.resourceId)).map((f) => f.name)).toEqual(['made-by-hand']);
  });

  it('updates a FIC whose audience changed (in place), and one of its name holding other content', async () => {
    const identity = await newIdentity();
    const wanted = spec('reports');
    await emulator.putFederatedCredential(identity.resourceId, 'made-by-hand', {
      issuer,
      subject: wanted.subject,
      audiences: ['api://something-else'],
    });
    const azure = layer();
    expect(await azure.ensureFederatedCredential(identity.resourceId, wanted)).toEqual({
      name: 'made-by-hand',
      action: 'updated',
    });
    expect(azure.stats.snapshot().writes).toBe(1);
    expect((await ficsOf(identity.resourceId)).map((f) => [f.name, f.properties.audiences])).toEqual([
      ['made-by-hand', [TOKEN_EXCHANGE_AUDIENCE]],
    ]);
    expect((await azure.ensureFederatedCredential(identity.resourceId, wanted)).action).toBe('adopted');
    expect(azure.stats.snapshot().writes).toBe(1);

    // Our deterministic name trusting an old issuer (e.g. the cluster was rebuilt) is overwritten.
    // Written by someone else, it is seen once the shared list is older than its window.
    const other = spec('audit');
    await emulator.putFederatedCredential(identity.resourceId, other.name, {
      issuer: 'https://old-issuer.example/',
      subject: other.subject,
      audiences: [TOKEN_EXCHANGE_AUDIENCE],
    });
    await sleep(LIST_SHARING_WINDOW_MS);
    expect(await azure.ensureFederatedCredential(identity.resourceId, other)).toEqual({
      name: other.name,
      action: 'updated',
    });
    const fic = (await ficsOf(identity.resourceId)).find((f) => f.name === other.name);
    expect(fic?.properties.issuer).toBe(issuer);
  });

  it('reports the 21st FIC as FederatedCredentialLimit, without a write when the list shows it', async () => {
    const identity = await newIdentity();
    for (let i = 0; i < 20; i++) {
      await emulator.putFederatedCredential(identity.resourceId, `existing-${i}`, {
        issuer,
        subject: ficSubject(namespace, `sa-${i}`),
        audiences: [TOKEN_EXCHANGE_AUDIENCE],
      });
    }
    const azure = layer();
    const error = await azure
      .ensureFederatedCredential(identity.resourceId, spec('one-too-many'))
      .catch((e) => e);
    expect(error).toBeInstanceOf(FederatedCredentialLimit);
    expect(error).toMatchObject({
      reason: 'FederatedCredentialLimitReached',
      resourceId: identity.resourceId,
    });
    expect((error as Error).message).toMatch(/maximum of 20/);
    expect(azure.stats.snapshot().writes).toBe(0);
    // A service account that already has one of the 20 is fine.
    expect((await azure.ensureFederatedCredential(identity.resourceId, spec('sa-7'))).action).toBe('adopted');
  });

  it("maps Azure's own 400 for the limit (identity filled meanwhile) and other 400s", async () => {
    const identity = await newIdentity();
    for (let i = 0; i < 19; i++) {
      await emulator.putFederatedCredential(identity.resourceId, `existing-${i}`, {
        issuer,
        subject: ficSubject(namespace, `sa-${i}`),
        audiences: [TOKEN_EXCHANGE_AUDIENCE],
      });
    }
    // Hold our PUT in the emulator while someone else fills the identity's last slot.
    const faultId = await emulator.addFault({
      method: 'PUT',
      pathContains: `/resourceGroups/${identity.resourceGroup}/`,
      latencyMs: 1500,
      count: 1,
    });
    const azure = layer();
    const ensuring = azure
      .ensureFederatedCredential(identity.resourceId, spec('late'))
      .catch((e: unknown) => e);
    while ((await emulator.listFaults()).some((f) => f.id === faultId)) await sleep(20);
    await emulator.putFederatedCredential(identity.resourceId, 'someone-else', {
      issuer,
      subject: ficSubject(namespace, 'someone-else'),
      audiences: [TOKEN_EXCHANGE_AUDIENCE],
    });
    const error = await ensuring;
    expect(error).toBeInstanceOf(FederatedCredentialLimit);
    expect((error as Error).message).toMatch(/already has the maximum of 20 federated identity credentials/);
    expect(azure.stats.snapshot().writes).toBe(1);

    const fresh = await newIdentity();
    const rejected = await azure
      .ensureFederatedCredential(fresh.resourceId, {
        ...spec('plain-http'),
        issuer: 'http://issuer.example/',
      })
      .catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(FederatedCredentialRejected);
    expect(rejected).toMatchObject({
      reason: 'FederatedCredentialRejected',
      ficName: spec('plain-http').name,
    });
    expect((rejected as FederatedCredentialRejected).azureMessage).toMatch(/must be a valid https URL/);
  });

  it('deletes a FIC, and deleting it again costs no write; only the real delete is reported', async () => {
    const identity = await newIdentity();
    const azure = layer();
    const deletions: string[] = [];
    azure.onFederatedCredentialDeleted = (resourceId, name) => deletions.push(`${resourceId}/${name}`);
    const wanted = spec('short-lived');
    await azure.ensureFederatedCredential(identity.resourceId, wanted);
    expect(await azure.deleteFederatedCredential(identity.resourceId, wanted.name)).toEqual({
      deleted: true,
    });
    expect(await ficsOf(identity.resourceId)).toEqual([]);
    const before = azure.stats.snapshot();
    expect(await azure.deleteFederatedCredential(identity.resourceId, wanted.name)).toEqual({
      deleted: false,
    });
    expect(azure.stats.snapshot().writes - before.writes).toBe(0);
    expect(deletions).toEqual([`${identity.resourceId}/${wanted.name}`]);
    // The shared list lost it too: ensuring it again writes it again.
    expect((await azure.ensureFederatedCredential(identity.resourceId, wanted)).action).toBe('created');
  });

  it("a burst of reconciles on one identity costs one GET and one LIST, within Azure's read limits", async () => {
    const identity = await newIdentity();
    const azure = layer();
    let listed = 0;
    azure.onFederatedCredentialsListed = (resourceId) => {
      if (resourceId === identity.resourceId) listed++;
    };
    const accounts = Array.from({ length: 10 }, (_, i) => `burst-${i}`);
    // What ten reconciles of ten resources on one identity ask, all at once.
    const burst = () =>
      Promise.all([
        Promise.all(accounts.map(() => azure.getIdentity(identity.resourceId))),
        Promise.all(accounts.map((sa) => azure.ensureFederatedCredential(identity.resourceId, spec(sa)))),
      ]);
    const [ids, ensured] = await burst();
    expect(new Set(ids.map((i) => i.clientId))).toEqual(new Set([identity.clientId]));
    expect(ensured.map((e) => e.action)).toEqual(accounts.map(() => 'created'));
    expect(azure.stats.snapshot()).toMatchObject({ reads: 2, writes: 10, throttled: 0 });
    // The hook saw the one list read from ARM.
    expect(listed).toBe(1);
    // The same burst again (a resync): no GET, at most one LIST (none within the sharing window).
    const [, again] = await burst();
    expect(again.map((e) => e.action)).toEqual(accounts.map(() => 'unchanged'));
    const after = azure.stats.snapshot();
    expect(after.reads - 2).toBe(listed - 1);
    expect(listed).toBeLessThanOrEqual(2);
    expect(after).toMatchObject({ writes: 10, throttled: 0 });
    expect(await ficsOf(identity.resourceId)).toHaveLength(10);
  });

  it('paces the reads that remain: a subscription under its 5 LISTs/s, an identity under its 0.5 GETs/s', async () => {
    const where = await scope();
    const identities = await Promise.all(
      Array.from({ length: 12 }, (_, i) => newIdentity(where, `many-${i}`)),
    );
    const azure = layer();
    let started = Date.now();
    await Promise.all(identities.map((identity) => azure.listFederatedCredentials(identity.resourceId)));
    // 4 at once, then 4.5/s: the 12th at 8 / 4.5 s.
    expect(Date.now() - started).toBeGreaterThanOrEqual((8 / 4.5) * 1000 - 50);
    expect(azure.stats.snapshot()).toMatchObject({ reads: 12, throttled: 0 });

    // Deleting three FICs reads each first: three GETs of one identity, 2.2 s apart.
    const [first] = identities;
    for (const sa of ['x', 'y', 'z'])
      await emulator.putFederatedCredential(first!.resourceId, `del-${sa}`, {
        issuer,
        subject: ficSubject(namespace, `del-${sa}`),
        audiences: [TOKEN_EXCHANGE_AUDIENCE],
      });
    started = Date.now();
    for (const sa of ['x', 'y', 'z'])
      expect(await azure.deleteFederatedCredential(first!.resourceId, `del-${sa}`)).toEqual({
        deleted: true,
      });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * (1000 / 0.45) - 50);
    expect(azure.stats.snapshot()).toMatchObject({ reads: 15, writes: 3, throttled: 0 });
  });

  it("keeps an identity's IDs, yet a deleted identity surfaces as IdentityNotFound and a new one is found", async () => {
    const where = await scope();
    const identity = await newIdentity(where, 'replaced');
    const azure = layer();
    expect((await azure.getIdentity(identity.resourceId)).clientId).toBe(identity.clientId);
    expect((await azure.getIdentity(identity.resourceId)).clientId).toBe(identity.clientId);
    expect(azure.stats.snapshot().reads).toBe(1);

    await emulator.deleteIdentity(identity.resourceId);
    // The next call that reaches ARM for it finds it gone, and forgets its IDs.
    await expect(azure.ensureFederatedCredential(identity.resourceId, spec('gone'))).rejects.toBeInstanceOf(
      IdentityNotFound,
    );
    await expect(azure.getIdentity(identity.resourceId)).rejects.toBeInstanceOf(IdentityNotFound);
    // Not found is never kept: created again (new IDs, as a Terraform replace does), it is found.
    const recreated = await emulator.createIdentity({ ...where, name: 'replaced' });
    expect((await azure.getIdentity(identity.resourceId)).principalId).toBe(recreated.principalId);
    expect(azure.stats.snapshot().throttled).toBe(0);
  });

  it('reports a region without FICs (405) as FederatedCredentialsUnsupported; the identity still resolves', async () => {
    const where = await scope();
    const view = await emulator.createIdentity({ ...where, name: 'far-away', location: 'Malaysia South' });
    const resourceId = formatIdentityId({ ...where, name: 'far-away' });
    createdIdentities.push(resourceId);
    const azure = layer();
    expect((await azure.getIdentity(resourceId)).clientId).toBe(view.clientId);
    const error = await azure.ensureFederatedCredential(resourceId, spec('far')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FederatedCredentialsUnsupported);
    expect(error).toMatchObject({ reason: 'FederatedCredentialsUnsupported', resourceId });
    expect((error as Error).message).toMatch(/region .* does not support federated identity credentials/);
    // Nothing to delete there, and no error for it.
    expect(await azure.deleteFederatedCredential(resourceId, spec('far').name)).toEqual({ deleted: false });
    expect(azure.stats.snapshot()).toMatchObject({ writes: 0, throttled: 0 });
  });

  it('hands back a long Retry-After, and retries that run out, as AzureRetryableError', async () => {
    const where = await scope();
    const identity = await newIdentity(where);
    const path = `/resourceGroups/${identity.resourceGroup}/`;
    await emulator.addFault({
      method: 'PUT',
      pathContains: path,
      status: 429,
      retryAfterSeconds: 120,
      count: 1,
    });
    const azure = layer();
    const started = Date.now();
    const throttled = await azure.ensureFederatedCredential(identity.resourceId, spec('a')).catch((e) => e);
    expect(throttled).toBeInstanceOf(AzureRetryableError);
    expect(throttled).toMatchObject({ retryAfterMs: 120_000, statusCode: 429 });
    expect(Date.now() - started).toBeLessThan(5_000);

    const conflictFault = await emulator.addFault({
      method: 'PUT',
      pathContains: path,
      status: 409,
      count: 50,
    });
    try {
      // Another layer stands for another process: on an identity of its own, so that its first LIST
      // does not meet the first layer's in the identity's read budget.
      const second = await newIdentity(where, 'second');
      const other = layer({ retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 50, maxWaitMs: 1_000 } });
      const conflict = await other.ensureFederatedCredential(second.resourceId, spec('b')).catch((e) => e);
      expect(conflict).toBeInstanceOf(AzureRetryableError);
      expect(conflict).toMatchObject({ statusCode: 409 });
      expect((conflict as AzureRetryableError).retryAfterMs).toBeGreaterThan(0);
      expect(other.stats.snapshot()).toMatchObject({
        writes: 3,
        conflicts: 3,
        retries: 2,
        retryableFailures: 1,
      });
    } finally {
      await emulator.removeFault(conflictFault).catch(() => {});
    }
  });

  it('20 concurrent ensures on one identity, with slow writes and 429s: all succeed, no 409, paced', async () => {
    const where = await scope();
    const shared = await newIdentity(where, 'shared');
    const control = await newIdentity(where, 'control');
    const previous = await emulator.getConfig();
    await emulator.setConfig({ writeLatencyMs: 200 });
    try {
      // The setting is one where concurrent writes do collide: two raw SDK writes on one identity.
      const raw = managedIdentityClient(harness!, operator, where.subscriptionId);
      const outcomes = await Promise.allSettled(
        ['x', 'y'].map((sa) =>
          raw.federatedIdentityCredentials.createOrUpdate(where.resourceGroup, control.name, `raw-${sa}`, {
            issuer,
            subject: ficSubject(namespace, sa),
            audiences: [TOKEN_EXCHANGE_AUDIENCE],
          }),
        ),
      );
      const refused = outcomes.filter((o) => o.status === 'rejected');
      expect(refused).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({
        statusCode: 409,
        code: 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity',
      });

      // And it is this layer's lock that prevents it: without it, the layer's own writes collide.
      const unlocked = layer({
        writeLock: new NoLock(),
        retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10, maxWaitMs: 1_000 },
      });
      const unlockedResults = await Promise.allSettled(
        ['p', 'q', 'r', 's'].map((sa) => unlocked.ensureFederatedCredential(control.resourceId, spec(sa))),
      );
      expect(unlockedResults.filter((r) => r.status === 'rejected').length).toBeGreaterThan(0);
      expect(unlocked.stats.snapshot().conflicts).toBeGreaterThan(0);

      await emulator.addFault({
        method: 'PUT',
        pathContains: `/resourceGroups/${where.resourceGroup}/`,
        status: 429,
        retryAfterSeconds: 1,
        count: 3,
      });
      const puts: number[] = [];
      const recordPuts = {
        name: 'testRecordPuts',
        async sendRequest<Q extends { method: string }, R>(
          request: Q,
          next: (r: Q) => Promise<R>,
        ): Promise<R> {
          if (request.method === 'PUT') puts.push(Date.now());
          return next(request);
        },
      };
      // 4 writes/s with a burst of 2: PUTs at least 250 ms apart after the first two, visibly
      // slower than the 200 ms the emulator takes per write.
      const rate = 4;
      const burst = 2;
      const azure = layer({
        pacing: { perIdentity: { perSecond: rate, burst }, perSubscription: { perSecond: 100, burst: 20 } },
        clientOptions: { additionalPolicies: [{ policy: recordPuts, position: 'perRetry' }] },
      });
      const accounts = Array.from({ length: 20 }, (_, i) => `worker-${i}`);
      const started = Date.now();
      const results = await Promise.allSettled(
        accounts.map((sa) => azure.ensureFederatedCredential(shared.resourceId, spec(sa))),
      );
      const elapsed = Date.now() - started;

      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      const values = results.map(
        (r) => (r as PromiseFulfilledResult<{ name: string; action: string }>).value,
      );
      expect(values.every((v) => v.action === 'created')).toBe(true);
      expect(values.map((v) => v.name).sort()).toEqual(accounts.map((sa) => spec(sa).name).sort());

      const fics = await ficsOf(shared.resourceId);
      expect(fics).toHaveLength(20);
      expect(new Set(fics.map((f) => f.properties.subject)).size).toBe(20);
      expect(fics.map((f) => f.properties.subject).sort()).toEqual(
        accounts.map((sa) => ficSubject(namespace, sa)).sort(),
      );

      const stats = azure.stats.snapshot();
      expect(stats).toMatchObject({
        conflicts: 0,
        throttled: 3,
        writes: 23,
        retries: 3,
        retryableFailures: 0,
      });
      // Pacing: the k-th PUT (of all 23 attempts) goes no earlier than (k - burst + 1) / rate after the first.
      expect(puts).toHaveLength(23);
      const interval = 1000 / rate;
      for (let k = burst; k < puts.length; k++) {
        expect(puts[k]! - puts[0]!).toBeGreaterThanOrEqual((k - burst + 1) * interval - 50);
      }
      expect(elapsed).toBeGreaterThanOrEqual((23 - burst) * interval - 50);
      console.info(
        `20 concurrent ensures: ${elapsed} ms, ${stats.writes} PUTs (${stats.throttled} answered 429), ` +
          `${stats.conflicts} 409s, ${stats.reads} reads`,
      );

      // And the same 20 again: nothing to write.
      const again = await Promise.all(
        accounts.map((sa) => azure.ensureFederatedCredential(shared.resourceId, spec(sa))),
      );
      expect(again.every((r) => r.action === 'unchanged')).toBe(true);
      expect(azure.stats.snapshot().writes).toBe(23);
    } finally {
      await emulator.setConfig({ writeLatencyMs: previous.writeLatencyMs });
    }
  });

  it("builds the operator's credential from the workload-identity environment, for ARM and PostgreSQL", async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'app' } } });
    const dir = join(harness!.dir, 'projected-tokens', `azure-fic-${process.pid}`);
    await mkdir(dir, { recursive: true });

    async function envFor(ns: string, sa: string, clientId: string) {
      const file = join(dir, `${ns}-${sa}`);
      await writeFile(file, await serviceAccountToken(kc, ns, sa), { mode: 0o600 });
      return {
        AZURE_FEDERATED_TOKEN_FILE: file,
        AZURE_CLIENT_ID: clientId,
        AZURE_TENANT_ID: harness!.azure.tenantId,
      };
    }

    // The operator's own identity, as its pod would have it, drives the ARM layer.
    const op = harness!.azure.operator;
    const operatorEnv = await envFor(op.namespace, op.serviceAccount, op.clientId);
    const identity = await newIdentity();
    const azure = new ManagedIdentities({
      credential: createOperatorCredential({ cloud, env: operatorEnv }),
      cloud,
      ...FAST,
    });
    expect((await azure.getIdentity(identity.resourceId)).principalId).toBe(identity.principalId);

    // A token source for the database scope, for an app identity not mapped to any role (so no
    // other test's PostgreSQL password changes).
    await emulator.putFederatedCredential(identity.resourceId, 'app', {
      issuer,
      subject: ficSubject(namespace, 'app'),
      audiences: [TOKEN_EXCHANGE_AUDIENCE],
    });
    const appEnv = await envFor(namespace, 'app', identity.clientId);
    let created = 0;
    const source = new TokenSource({
      createCredential: () => {
        created++;
        return createOperatorCredential({ cloud, env: appEnv });
      },
      postgresScope: cloud.postgresScope,
    });
    const first = await source.getPostgresToken();
    expect(decodeJwt(first)).toMatchObject({
      oid: identity.principalId,
      aud: 'https://ossrdbms-aad.database.windows.net',
    });
    expect(await source.getPostgresToken()).toBe(first);
    expect(created).toBe(1);
    expect(source.invalidate(first)).toBe(true);
    const second = await source.getPostgresToken();
    expect(second).not.toBe(first);
    expect(decodeJwt(second).oid).toBe(identity.principalId);
    expect(source.invalidate(first)).toBe(false);
    expect(created).toBe(2);
  });
});
