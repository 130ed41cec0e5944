// The controller against Azure's documented ARM limits and failure modes (issue 13 §1), with the
// emulator enforcing them as it does by default:
// 1. Eight resources on one identity created at once: no 429 of any kind, one GET of the identity
//    (its IDs never change), a few shared LISTs instead of two per reconcile.
// 2. A resource refused at the 20-FIC limit proceeds as soon as the operator deletes a FIC on that
//    identity, not at its next resync (10 minutes here).
// 3. An identity in a region without FIC support (ARM 405) gets FederatedCredentialsUnsupported
//    and a message saying what to do.
// 4. A reconcile that keeps failing is retried after 1 s, then 2 s, 4 s…, not from 5 ms.
// One in-process controller (for its ARM stats and its log), one fleet world; the tests share it
// and run in order.
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ficName, ficSubject } from '../../src/azure/fic-name.ts';
import { parseIdentityId } from '../../src/azure/identity-id.ts';
import type { ControllerComponent } from '../../src/controller/component.ts';
import {
  AZURE_RATE_LIMITS,
  AzureEmulatorClient,
  type CountersSnapshot,
} from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, poller, sleep, uniqueName } from '../harness/context.ts';
import { makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  conditionOf,
  createAccess,
  createFleetWorld,
  deleteAccessAndWait,
  deleteAccessesAndWait,
  type FleetWorld,
  ficsOf,
  isReady,
  listAccesses,
  readAccess,
  startInProcessController,
  superuserQuery,
  waitForServerReady,
  writeOperatorToken,
} from '../harness/scenario.ts';

const info = harnessInfo();
const until = poller({ timeoutMs: 90_000 });
const RESYNC_SECONDS = 600;
const ENTRA_AUDIENCE = 'api://AzureADTokenExchange';

/** after − before of the emulator's ARM counters that these tests read. */
function armDelta(before: CountersSnapshot, after: CountersSnapshot) {
  const op = (name: string) => (after.arm.byOperation[name] ?? 0) - (before.arm.byOperation[name] ?? 0);
  return {
    throttled: after.arm.throttled.total - before.arm.throttled.total,
    identityGet: op('identityGet'),
    ficList: op('ficList'),
    ficGet: op('ficGet'),
    ficPut: op('ficPut'),
    ficDelete: op('ficDelete'),
  };
}

describe.skipIf(!info)("the controller within Azure's ARM limits", () => {
  const run = uniqueName('arm');
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let core: k8s.CoreV1Api;
  let emulator: AzureEmulatorClient;
  let world: FleetWorld;
  let dir: string;
  let controller: ControllerComponent | undefined;
  const logLines: string[] = [];

  const namespace = () => world.namespaces[0]!;
  const access = (name: string, identity: string, serviceAccountName = name) =>
    createAccess(custom, namespace(), name, {
      serviceAccountName,
      identity,
      serverRef: world.server,
      database: world.database,
      roleName: `${world.database}_${parseIdentityId(identity).name}`,
    });
  const reconcileErrors = (key: string) =>
    logLines
      .map((line) => JSON.parse(line) as { msg?: string; key?: string; retryInMs?: number; time?: number })
      .filter((entry) => entry.msg === 'Reconciler error' && entry.key === key);

  beforeAll(async () => {
    kc = adminKubeConfig(info!);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    core = kc.makeApiClient(k8s.CoreV1Api);
    emulator = new AzureEmulatorClient(info!.azure.url, { ca: readFileSync(info!.caFile) });
    // Azure's read and write limits are the emulator's default: everything here runs under them.
    expect((await emulator.getConfig()).rateLimits).toEqual(AZURE_RATE_LIMITS);
    dir = makeTempDir('controller-arm-limits');
    world = await createFleetWorld(info!, kc, emulator, { run, namespaces: 1, identities: 3 });
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    controller = await startInProcessController(info!, kc, {
      tokenFile: await writeOperatorToken(info!, kc, dir),
      clusterName: run,
      args: [`--resync-period=${RESYNC_SECONDS}`],
      logger: pino({ level: 'info', base: { component: 'entra-access' } }, sink),
    });
    // The server's first status write re-queues every access on it: let it happen before the
    // tests count reconciles and reads.
    await waitForServerReady(custom, world.server);
  });

  afterAll(async () => {
    if (controller && world) await deleteAccessesAndWait(custom, namespace(), 90_000);
    await controller?.stop();
    if (world) {
      for (const identity of world.identities) await emulator.deleteIdentity(identity.id).catch(() => {});
      await superuserQuery(info!, `DROP DATABASE IF EXISTS "${world.database}" WITH (FORCE)`).catch(() => {});
      for (const identity of world.identities)
        await superuserQuery(
          info!,
          `DROP ROLE IF EXISTS "${world.database}_${parseIdentityId(identity.id).name}"`,
        ).catch(() => {});
    }
    if (dir) removeTempDir(dir);
  }, 180_000);

  it('8 resources on one identity at once: no 429, one GET of the identity, shared LISTs', async () => {
    const identity = world.identities[0]!;
    const names = Array.from({ length: 8 }, (_, i) => `crowd-${i}`);
    const before = await emulator.counters();
    const statsBefore = controller!.armStats();
    const started = Date.now();
    await Promise.all(names.map((name) => access(name, identity.id)));
    const items = await until(
      () => listAccesses(custom, namespace()),
      (list) =>
        list.filter((a) => names.includes(a.metadata.name ?? '') && isReady(a)).length === names.length,
    );
    const elapsedSec = (Date.now() - started) / 1000;
    expect(items.filter((a) => names.includes(a.metadata.name ?? '')).every(isReady)).toBe(true);
    const arm = armDelta(before, await emulator.counters());
    const stats = controller!.armStats();
    console.log(
      `[arm-limits] 8 resources on one identity Ready in ${elapsedSec} s; ARM requests ${JSON.stringify(arm)}`,
    );
    expect(arm.throttled).toBe(0);
    expect(stats.throttled - statsBefore.throttled).toBe(0);
    expect(arm.ficPut).toBe(8);
    // Its IDs never change: one GET, whatever the number of reconciles.
    expect(arm.identityGet).toBe(1);
    // Unshared, every reconcile listed twice (16 LISTs, at most one per 4 s allowed): shared, a
    // LIST serves every reconcile within 5 s, and a write may rest on one up to 30 s old.
    expect(arm.ficList).toBeLessThanOrEqual(Math.ceil(elapsedSec / 30) + 2);
    expect(await ficsOf(emulator, identity.id)).toHaveLength(8);
  });

  it('a resource refused at the 20-FIC limit proceeds once the operator deletes a FIC there, before its resync', async () => {
    const identity = world.identities[1]!;
    // 19 FICs someone else made, then ours: the identity is full.
    for (let i = 0; i < 19; i++)
      await emulator.putFederatedCredential(identity.id, `by-hand-${i}`, {
        issuer: info!.kubernetes.issuer,
        subject: `system:serviceaccount:elsewhere:sa-${i}`,
        audiences: [ENTRA_AUDIENCE],
      });
    await access('first', identity.id);
    await until(() => readAccess(custom, namespace(), 'first'), isReady);
    await access('second', identity.id);
    const refused = await until(
      () => readAccess(custom, namespace(), 'second'),
      (a) => conditionOf(a, 'FederatedCredentialReady')?.reason === 'FederatedCredentialLimitReached',
    );
    expect(conditionOf(refused)?.status).toBe('False');
    expect(await ficsOf(emulator, identity.id)).toHaveLength(20);

    // Deleting the first resource deletes its FIC: the second gets its slot now, not in 10 minutes.
    const deletedAt = Date.now();
    await deleteAccessAndWait(custom, namespace(), 'first');
    const second = await until(() => readAccess(custom, namespace(), 'second'), isReady, 60_000);
    const waitedSec = (Date.now() - deletedAt) / 1000;
    console.log(
      `[arm-limits] refused at the limit: Ready ${waitedSec} s after the other resource's deletion`,
    );
    expect(isReady(second)).toBe(true);
    expect(waitedSec).toBeLessThan(RESYNC_SECONDS / 10);
    const fics = await ficsOf(emulator, identity.id);
    expect(fics).toHaveLength(20);
    expect(fics.map((f) => f.name)).toContain(ficName(run, namespace(), 'second'));
    expect(fics.map((f) => f.properties.subject)).not.toContain(ficSubject(namespace(), 'first'));
  });

  it('an identity in a region without FIC support gets FederatedCredentialsUnsupported, saying what to do', async () => {
    const { subscriptionId, resourceGroup } = parseIdentityId(world.identities[2]!.id);
    const far = await emulator.createIdentity({
      subscriptionId,
      resourceGroup,
      name: 'far-away',
      location: 'New Zealand North',
    });
    world.identities.push({ id: far.id, clientId: far.clientId, principalId: far.principalId });
    const before = await emulator.counters();
    await access('far', far.id);
    const refused = await until(
      () => readAccess(custom, namespace(), 'far'),
      (a) => conditionOf(a, 'FederatedCredentialReady')?.reason === 'FederatedCredentialsUnsupported',
    );
    const condition = conditionOf(refused, 'FederatedCredentialReady');
    expect(condition?.status).toBe('False');
    expect(condition?.message).toMatch(/region .* does not support federated identity credentials/);
    expect(condition?.message).toMatch(/use a user-assigned identity created in a supported region/);
    expect(conditionOf(refused)).toMatchObject({
      status: 'False',
      reason: 'FederatedCredentialsUnsupported',
    });
    // The identity itself resolved; nothing was written, and it is not retried in a loop.
    expect(conditionOf(refused, 'IdentityResolved')?.status).toBe('True');
    await sleep(5000);
    const arm = armDelta(before, await emulator.counters());
    expect(arm.ficPut).toBe(0);
    expect(arm.ficList).toBeLessThanOrEqual(2);
    expect(reconcileErrors(`${namespace()}/far`)).toEqual([]);
  });

  it('a reconcile that keeps failing is retried after 1 s, doubling, not from 5 ms', async () => {
    const identity = world.identities[2]!;
    // A ServiceAccount the controller must create, in a namespace whose quota allows none: the
    // ServiceAccount step fails (403 from the apiserver) on every reconcile.
    const quota = await core.createNamespacedResourceQuota({
      namespace: namespace(),
      body: { metadata: { name: 'no-service-accounts' }, spec: { hard: { 'count/serviceaccounts': '0' } } },
    });
    await core.replaceNamespacedResourceQuotaStatus({
      namespace: namespace(),
      name: 'no-service-accounts',
      body: {
        ...quota,
        status: { hard: { 'count/serviceaccounts': '0' }, used: { 'count/serviceaccounts': '0' } },
      },
    });
    const key = `${namespace()}/blocked`;
    await access('blocked', identity.id);
    await until(
      async () => reconcileErrors(key),
      (errors) => errors.length > 0,
      30_000,
    );
    await sleep(6000);
    const errors = reconcileErrors(key);
    const first = errors[0]!.time!;
    const within = errors.filter((e) => (e.time ?? 0) - first <= 6000);
    console.log(
      `[arm-limits] failing reconcile: ${within.length} errors in its first 6 s, retries in ${JSON.stringify(errors.map((e) => e.retryInMs))} ms`,
    );
    expect(errors.map((e) => e.retryInMs).slice(0, 3)).toEqual([1000, 2000, 4000]);
    // 5 ms doubling would have failed 10 times by now: 0, 5, 15, … 2555 ms.
    expect(within.length).toBeLessThanOrEqual(3);
    const blocked = await readAccess(custom, namespace(), 'blocked');
    expect(conditionOf(blocked, 'ServiceAccountReady')?.reason).toBe('KubernetesRequestFailed');

    // Allowed again, it converges at its next retry.
    await core.deleteNamespacedResourceQuota({ namespace: namespace(), name: 'no-service-accounts' });
    expect(isReady(await until(() => readAccess(custom, namespace(), 'blocked'), isReady, 60_000))).toBe(
      true,
    );
  });
});
