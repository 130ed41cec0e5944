// The controller under faults, against every real part (issue 4, "Faults during a run" and
// "Leader election"):
// 1. 20 access resources for 20 service accounts sharing ONE identity, with slow ARM writes,
//    injected 429s (Retry-After) and 409s, real concurrent-write 409s from another writer on the
//    identity, and one FIC that other writer made first: exactly 20 FICs, one per subject.
// 2. The admin's PostgreSQL token is revoked: a change that needs the database is applied with no
//    manual step (28P01 → the token source fetches a new token).
// 3. The controller process is SIGKILLed mid-reconcile and started again: everything converges.
// 4. Two controller processes with leader election: one reconciles; SIGKILL the leader and the
//    other takes over within the lease time.
// Tests 1 and 2 run the controller in-process (for armStats and the log); 3 and 4 run
// `node src/main.ts run --controller` as real processes. They share the resources they create, so
// they run in order.
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import * as k8s from '@kubernetes/client-node';
import type pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_PLURAL, FINALIZER, SERVER_PLURAL } from '../../src/api/constants.ts';
import type { EntraDatabaseAccess, Grant } from '../../src/api/types.ts';
import { ficName, ficSubject } from '../../src/azure/fic-name.ts';
import type { ControllerComponent } from '../../src/controller/component.ts';
import { parseMicroTime } from '../../src/controller/leader-election.ts';
import { AzureEmulatorClient, type CountersSnapshot } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, poller, pollFor, uniqueName } from '../harness/context.ts';
import { API, mergePatch } from '../harness/kube.ts';
import { freePort } from '../harness/ports.ts';
import { type ManagedProcess, makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  conditionOf,
  createAccess as createAccessIn,
  createAppDatabase,
  createDatabaseServer,
  createOptedInNamespace,
  ficsOf as ficsOfIdentity,
  isReady,
  listAccesses as listAccessesOf,
  patchAccess,
  readAccess as readAccessOf,
  readGrants,
  rolesOfPrincipal as rolesOf,
  startInProcessController,
  startOperatorProcess,
  superuserQuery,
  waitForServerReady,
  writeOperatorToken,
} from '../harness/scenario.ts';
import {
  ARM_SCOPE,
  ENTRA_AUDIENCE,
  POSTGRES_SCOPE,
  serviceAccountToken,
  workloadIdentityCredential,
} from '../harness/workload-identity.ts';

const harness = harnessInfo();
const CLUSTER = 'faults';

const until = poller({ timeoutMs: 60_000 });

/** One line per ARM attempt the controller sent, seen in its own SDK pipeline. */
interface ArmAttempt {
  at: number;
  method: string;
  path: string;
  status: number | undefined;
}

describe.skipIf(!harness)(
  'controller under faults: throttling, conflicts, token rotation, crashes, failover',
  () => {
    const run = uniqueName('flt');
    const subscriptionId = '00000000-0000-0000-0000-00000000f417';
    const database = run.replaceAll('-', '_');
    const serverName = `${run}-pg`;
    const ns = {
      shared: `${run}-shared`,
      rotate: `${run}-rotate`,
      crash: `${run}-crash`,
      elect: `${run}-elect`,
    };
    const rg = {
      shared: `${run}-rg-shared`,
      rotate: `${run}-rg-rotate`,
      crash: `${run}-rg-crash`,
      elect: `${run}-rg-elect`,
    };
    let kc: k8s.KubeConfig;
    let core: k8s.CoreV1Api;
    let custom: k8s.CustomObjectsApi;
    let coordination: k8s.CoordinationV1Api;
    let emulator: AzureEmulatorClient;
    let logDir: string;
    let tokenFile: string;
    let controller: ControllerComponent | undefined;
    const logLines: string[] = [];
    const armAttempts: ArmAttempt[] = [];
    const processes: ManagedProcess[] = [];
    const faultIds: string[] = [];
    let initialWriteLatencyMs = 0;
    const identities: Record<keyof typeof rg, { id: string; clientId: string; principalId: string }> =
      {} as never;

    const superuser = <T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], db = 'postgres') =>
      superuserQuery<T>(harness!, sql, params, db);
    const hasTablePrivilege = async (role: string, table: string, privilege: string) =>
      (
        await superuser<{ ok: boolean }>(
          'SELECT has_table_privilege($1, $2, $3) AS ok',
          [role, `public.${table}`, privilege],
          database,
        )
      )[0]?.ok === true;
    const rolesOfPrincipal = (principalId: string) => rolesOf(harness!, principalId);
    const readAccess = (namespace: string, name: string) => readAccessOf(custom, namespace, name);
    const listAccesses = (namespace: string) => listAccessesOf(custom, namespace);
    const allReady = (items: EntraDatabaseAccess[], count: number) =>
      items.length === count && items.every(isReady);

    const createAccess = (
      namespace: string,
      name: string,
      spec: { serviceAccountName: string; identity: string; roleName: string; grants?: Grant[] },
    ) => createAccessIn(custom, namespace, name, { ...spec, serverRef: serverName, database });

    const ficsOf = (identityId: string) => ficsOfIdentity(emulator, identityId);

    const ficPutsByStatus = (before: CountersSnapshot, after: CountersSnapshot) => {
      const delta: Record<string, number> = {};
      const a = after.arm.byOperationAndStatus.ficPut ?? {};
      const b = before.arm.byOperationAndStatus.ficPut ?? {};
      for (const status of Object.keys(a)) {
        const n = (a[status] ?? 0) - (b[status] ?? 0);
        if (n > 0) delta[status] = n;
      }
      return delta;
    };

    /** `node src/main.ts run --controller ...`, as the container runs it, with the operator's workload identity. */
    async function startControllerProcess(name: string, args: string[]): Promise<ManagedProcess> {
      const proc = await startOperatorProcess(harness!, {
        name,
        logDir,
        tokenFile,
        clusterName: CLUSTER,
        args: ['--controller', '--resync-period=300', '--health-port=0', ...args],
      });
      processes.push(proc);
      return proc;
    }
    const logOf = (proc: ManagedProcess) => readFileSync(proc.logFile, 'utf8');
    const waitForLog = (proc: ManagedProcess, text: string, timeoutMs = 30_000) =>
      pollFor(() => logOf(proc).includes(text), timeoutMs);

    beforeAll(async () => {
      kc = adminKubeConfig(harness!);
      core = kc.makeApiClient(k8s.CoreV1Api);
      custom = kc.makeApiClient(k8s.CustomObjectsApi);
      coordination = kc.makeApiClient(k8s.CoordinationV1Api);
      emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
      initialWriteLatencyMs = (await emulator.getConfig()).writeLatencyMs;
      logDir = makeTempDir('controller-faults');
      for (const key of Object.keys(rg) as Array<keyof typeof rg>) {
        identities[key] = await emulator.createIdentity({
          subscriptionId,
          resourceGroup: rg[key],
          name: key,
        });
      }

      await createAppDatabase(
        harness!,
        database,
        'CREATE TABLE orders (id int); CREATE TABLE items (id int);',
      );
      for (const name of Object.values(ns))
        await createOptedInNamespace(core, name, `/subscriptions/${subscriptionId}/*`);
      await createDatabaseServer(harness!, kc, {
        name: serverName,
        namespaces: Object.values(ns),
        databases: [database],
      });
      // The operator's own workload identity, as the AKS webhook would project it into its pod.
      tokenFile = await writeOperatorToken(harness!, kc, logDir);

      // Tests 1 and 2: the controller in this process, so its ARM counters and log can be read.
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
          done();
        },
      });
      controller = await startInProcessController(harness!, kc, {
        tokenFile,
        clusterName: CLUSTER,
        args: ['--resync-period=300'],
        logger: pino({ level: 'info', base: { component: 'entra-access' } }, sink),
        // Records every ARM attempt (after the SDK's retries, which are off): when 429s came back
        // and when the next write went out.
        azureClientOptions: {
          additionalPolicies: [
            {
              position: 'perRetry',
              policy: {
                name: 'testArmRecorder',
                async sendRequest(
                  request: { method: string; url: string },
                  next: (r: unknown) => Promise<{ status: number }>,
                ) {
                  const path = new URL(request.url).pathname;
                  const record = (status: number | undefined) => {
                    if (path.includes('/subscriptions/'))
                      armAttempts.push({ at: Date.now(), method: request.method, path, status });
                  };
                  try {
                    const response = await next(request);
                    record(response.status);
                    return response;
                  } catch (error) {
                    record((error as { statusCode?: number }).statusCode);
                    throw error;
                  }
                },
              },
            },
          ],
        },
      });
      const server = await waitForServerReady(custom, serverName);
      expect(conditionOf(server)?.status).toBe('True');
    });

    afterAll(async () => {
      await controller?.stop();
      await Promise.all(processes.map((p) => p.stop(3000)));
      for (const id of faultIds) await emulator?.removeFault(id).catch(() => {});
      await emulator?.setConfig({ writeLatencyMs: initialWriteLatencyMs }).catch(() => {});
      // No controller runs any more: let the resources go without their cleanup, then remove what
      // they made directly.
      for (const namespace of Object.values(ns)) {
        const items = await listAccesses(namespace).catch(() => []);
        for (const item of items) {
          await custom
            .patchNamespacedCustomObject(
              {
                ...API,
                plural: ACCESS_PLURAL,
                namespace,
                name: item.metadata.name ?? '',
                body: { metadata: { finalizers: null } },
              },
              mergePatch,
            )
            .catch(() => {});
          // The harness runs no namespace controller: a namespace's objects outlive its deletion,
          // and the next file's controller would find them.
          await custom
            .deleteNamespacedCustomObject({
              ...API,
              plural: ACCESS_PLURAL,
              namespace,
              name: item.metadata.name ?? '',
            })
            .catch(() => {});
        }
        await core?.deleteNamespace({ name: namespace }).catch(() => {});
      }
      await custom
        ?.deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name: serverName })
        .catch(() => {});
      await core
        ?.deleteNamespacedSecret({ namespace: harness!.azure.operator.namespace, name: `${serverName}-ca` })
        .catch(() => {});
      for (const identity of Object.values(identities))
        await emulator?.deleteIdentity(identity.id).catch(() => {});
      await superuser(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
      for (const suffix of ['shared', 'rot', 'crash', 'elect']) {
        await superuser(`DROP ROLE IF EXISTS "${database}_${suffix}"`).catch(() => {});
      }
      if (logDir) removeTempDir(logDir);
    });

    // Azure paces FIC writes at 0.25/s per identity and so does the operator: 20 writes on one
    // identity take about 80 s before any fault, so this test gets more than the default 120 s.
    it('20 service accounts on one identity: 429s, 409s and slow writes converge to exactly 20 FICs', {
      timeout: 300_000,
    }, async () => {
      const identity = identities.shared;
      const namespace = ns.shared;
      const sas = Array.from({ length: 20 }, (_, i) => `app-${String(i + 1).padStart(2, '0')}`);
      const identityPath = `/resourceGroups/${rg.shared}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/shared/federatedIdentityCredentials/`;

      // Another writer on the identity (Terraform, another cluster's operator), through the real SDK:
      // it federated app-07 already, under its own name, so the controller must adopt that FIC.
      const otherWriter = new ManagedServiceIdentityClient(
        await workloadIdentityCredential(
          harness!,
          harness!.azure.operator.clientId,
          await serviceAccountToken(
            kc,
            harness!.azure.operator.namespace,
            harness!.azure.operator.serviceAccount,
          ),
        ),
        subscriptionId,
        { endpoint: harness!.azure.url, credentialScopes: [ARM_SCOPE], retryOptions: { maxRetries: 0 } },
      );
      const foreign = {
        issuer: harness!.kubernetes.issuer,
        subject: ficSubject(namespace, 'app-07'),
        audiences: [ENTRA_AUDIENCE],
      };
      await otherWriter.federatedIdentityCredentials.createOrUpdate(
        rg.shared,
        'shared',
        'terraform-app-07',
        foreign,
      );

      // Slow writes: each holds the identity, so writes that overlap it get Azure's real 409.
      // Injected on the controller's FIC PUTs in this resource group: two 409s from the start, and
      // two 429s with Retry-After once most FICs are written. (A 429 makes the controller fall back
      // to Azure's sustained 0.25 writes/s per identity for what is left, by design; 429s at the
      // start would stretch the 19 writes to ~80 s.)
      await emulator.setConfig({ writeLatencyMs: 200 });
      const faultPath = `${identityPath}${CLUSTER}_`;
      faultIds.push(
        await emulator.addFault({ method: 'PUT', pathContains: faultPath, status: 409, count: 2 }),
      );
      const statsBefore = controller!.armStats();
      const countersBefore = await emulator.counters();
      const attemptsFrom = armAttempts.length;

      const started = Date.now();
      await Promise.all(
        sas.map((sa) =>
          createAccess(namespace, sa, {
            serviceAccountName: sa,
            identity: identity.id,
            roleName: `${database}_shared`,
          }),
        ),
      );
      // Meanwhile the other writer keeps updating its FIC (same content): its writes hold the
      // identity, so the controller's that overlap them get 409
      // ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity.
      const otherWriterStatuses: Array<number | string> = [];
      for (let i = 0; i < 6; i++) {
        try {
          await otherWriter.federatedIdentityCredentials.createOrUpdate(
            rg.shared,
            'shared',
            'terraform-app-07',
            foreign,
          );
          otherWriterStatuses.push(200);
        } catch (error) {
          otherWriterStatuses.push((error as { statusCode?: number }).statusCode ?? String(error));
        }
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      await until(
        () => ficsOf(identity.id),
        (fics) => fics.length >= 17,
        60_000,
      );
      faultIds.push(
        await emulator.addFault({
          method: 'PUT',
          pathContains: faultPath,
          status: 429,
          retryAfterSeconds: 1,
          count: 2,
        }),
      );

      const items = await until(
        () => listAccesses(namespace),
        (list) => allReady(list, 20),
        240_000,
      );
      const elapsedMs = Date.now() - started;
      const stats = controller!.armStats();
      const delta = Object.fromEntries(
        Object.entries(stats).map(([k, v]) => [k, v - statsBefore[k as keyof typeof stats]]),
      ) as unknown as typeof stats;
      const emulatorPuts = ficPutsByStatus(countersBefore, await emulator.counters());
      const notReady = items.filter((a) => !isReady(a)).map((a) => [a.metadata.name, a.status?.conditions]);
      expect(notReady, `${JSON.stringify(notReady)}\n${logLines.slice(-20).join('\n')}`).toEqual([]);

      // Exactly the right 20 FICs: one per service account, none twice, app-07's adopted.
      const fics = await ficsOf(identity.id);
      const subjects = fics.map((f) => f.properties.subject).sort();
      expect(subjects).toEqual(sas.map((sa) => ficSubject(namespace, sa)).sort());
      expect(new Set(subjects).size).toBe(20);
      for (const fic of fics) {
        expect(fic.properties.issuer).toBe(harness!.kubernetes.issuer);
        expect(fic.properties.audiences).toEqual([ENTRA_AUDIENCE]);
      }
      const names = Object.fromEntries(fics.map((f) => [f.properties.subject, f.name]));
      for (const access of items) {
        const sa = access.spec.serviceAccountName;
        const expected = sa === 'app-07' ? 'terraform-app-07' : ficName(CLUSTER, namespace, sa);
        expect(names[ficSubject(namespace, sa)]).toBe(expected);
        expect(access.status?.federatedCredential?.name).toBe(expected);
      }
      expect(
        conditionOf(
          items.find((a) => a.metadata.name === 'app-07'),
          'FederatedCredentialReady',
        )?.reason,
      ).toBe('Adopted');
      // Every SA annotated; one PostgreSQL role for the one principal, whatever the concurrency.
      for (const sa of sas) {
        const account = await core.readNamespacedServiceAccount({ namespace, name: sa });
        expect(account.metadata?.annotations?.['azure.workload.identity/client-id']).toBe(identity.clientId);
      }
      expect(await rolesOfPrincipal(identity.principalId)).toEqual([`${database}_shared`]);

      // The faults were met and survived: every injected 429 and 409 reached the controller, and
      // no write was wasted (each write created one of the 19 FICs, or was refused with 429/409).
      expect(delta.throttled).toBeGreaterThanOrEqual(2);
      expect(delta.conflicts).toBeGreaterThanOrEqual(2);
      expect(delta.writes).toBe(19 + delta.throttled + delta.conflicts);
      // Retry-After honoured: after a 429 the controller sent no write to the identity for 1 s.
      const attempts = armAttempts.slice(attemptsFrom).filter((a) => a.method === 'PUT');
      const early = attempts.flatMap((a, i) => {
        const next = attempts[i + 1];
        return a.status === 429 && next && next.at - a.at < 950 ? [{ after429: a.at, next: next.at }] : [];
      });
      expect(early).toEqual([]);

      console.log(
        `[faults] 20 resources on one identity Ready in ${elapsedMs} ms; controller armStats delta ${JSON.stringify(delta)}; ` +
          `emulator FIC PUTs by status ${JSON.stringify(emulatorPuts)}; other writer's PUTs ${JSON.stringify(otherWriterStatuses)}`,
      );
    });

    it('admin token revoked: the next change that needs the database is applied with a new token, no manual step', async () => {
      const identity = identities.rotate;
      const namespace = ns.rotate;
      const role = `${database}_rot`;
      const baseGrants: Grant[] = readGrants('orders');
      await createAccess(namespace, 'rotate', {
        serviceAccountName: 'rotate',
        identity: identity.id,
        roleName: role,
        grants: baseGrants,
      });
      expect(isReady(await until(() => readAccess(namespace, 'rotate'), isReady))).toBe(true);
      expect(await hasTablePrivilege(role, 'orders', 'SELECT')).toBe(true);
      expect(await hasTablePrivilege(role, 'items', 'SELECT')).toBe(false);

      const adminRole = harness!.azure.operator.postgresAdminRole;
      const tokensBefore = (await emulator.counters()).token.byScope[POSTGRES_SCOPE] ?? 0;
      const logFrom = logLines.length;

      // Rotate: every admin token issued so far is refused at login from now on.
      expect(await emulator.revoke(harness!.azure.operator.principalId)).toBe(adminRole);
      // Entra checks the token only at login, so the pool's idle connections, opened with the old
      // token, would keep working and hide the rotation until the pool's 30 s idle timeout. On Azure
      // they end when the server restarts or fails over (maintenance, scaling); do that here by
      // terminating the admin's backends, so the next statement needs a new connection.
      // (The call is in the select list: in WHERE, PostgreSQL may evaluate it before the filters.)
      const terminated = await superuser<{ pid: number }>(
        `SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE usename = $1 AND application_name = 'entra-access'`,
        [adminRole],
      );
      expect(terminated.length).toBeGreaterThan(0);
      await until(
        () =>
          superuser<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND application_name = 'entra-access'",
            [adminRole],
          ),
        (rows) => rows[0]?.n === 0,
        10_000,
      );

      // A change that needs the database.
      const started = Date.now();
      await patchAccess(custom, namespace, 'rotate', {
        grants: [
          ...baseGrants.slice(0, 2),
          { target: 'tables', schema: 'public', tables: ['orders', 'items'], privileges: ['SELECT'] },
        ],
      });
      const access = await until(
        () => readAccess(namespace, 'rotate'),
        (a) => isReady(a) && (a?.metadata.generation ?? 0) > 1,
        30_000,
      );
      const elapsedMs = Date.now() - started;
      expect(isReady(access), JSON.stringify(access?.status)).toBe(true);
      expect(await hasTablePrivilege(role, 'items', 'SELECT')).toBe(true);
      expect(await hasTablePrivilege(role, 'orders', 'SELECT')).toBe(true);

      // The refused login was seen (28P01 from the gateway), and a new token was fetched for it.
      const refused = logLines.slice(logFrom).filter((l) => l.includes('password authentication failed'));
      const tokensAfter = (await emulator.counters()).token.byScope[POSTGRES_SCOPE] ?? 0;
      expect(refused.length).toBeGreaterThan(0);
      expect(tokensAfter).toBeGreaterThan(tokensBefore);
      // And the new token logs in: a fresh admin connection now exists.
      const sessions = await superuser<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND application_name = 'entra-access'",
        [adminRole],
      );
      expect(sessions[0]?.n).toBeGreaterThan(0);
      console.log(
        `[faults] admin token revoked; ${terminated.length} idle admin connections ended; grant applied ${elapsedMs} ms after the change, ` +
          `after ${refused.length} refused login(s) and ${tokensAfter - tokensBefore} new PostgreSQL token(s)`,
      );
    });

    it('killed mid-reconcile (SIGKILL) and restarted: converges with no duplicate FIC and the right roles', async () => {
      // From here on the controller runs as a real process.
      await controller!.stop();
      controller = undefined;
      const identity = identities.crash;
      const namespace = ns.crash;
      const role = `${database}_crash`;
      const sas = Array.from({ length: 6 }, (_, i) => `crash-${i + 1}`);
      await emulator.setConfig({ writeLatencyMs: 2000 });
      const countersBefore = await emulator.counters();

      // Leader election off here: with it, the restarted process would first wait out the dead
      // one's lease (test 4 covers that).
      const first = await startControllerProcess('controller-crash-1', [
        '--leader-elect=false',
        '--metrics-port=0',
      ]);
      await waitForLog(first, 'controller running');
      for (const sa of sas) {
        await createAccess(namespace, sa, {
          serviceAccountName: sa,
          identity: identity.id,
          roleName: role,
          grants: readGrants('orders'),
        });
      }
      // Kill once some FICs exist and the rest are still being written.
      const ficsAtKill = await until(
        () => ficsOf(identity.id),
        (fics) => fics.length >= 2,
        30_000,
      );
      await first.kill();
      const readyAtKill = (await listAccesses(namespace)).filter(isReady).length;
      const ficCountAtKill = ficsAtKill.length;
      expect(ficCountAtKill).toBeLessThan(sas.length);
      expect(readyAtKill).toBeLessThan(sas.length);

      const restarted = Date.now();
      const second = await startControllerProcess('controller-crash-2', [
        '--leader-elect=false',
        '--metrics-port=0',
      ]);
      const items = await until(
        () => listAccesses(namespace),
        (list) => allReady(list, sas.length),
        60_000,
      );
      const convergedMs = Date.now() - restarted;
      const notReady = items.filter((a) => !isReady(a)).map((a) => [a.metadata.name, a.status?.conditions]);
      expect(notReady, `${JSON.stringify(notReady)}\n${second.tail(40)}`).toEqual([]);

      const fics = await ficsOf(identity.id);
      const subjects = fics.map((f) => f.properties.subject).sort();
      expect(subjects).toEqual(sas.map((sa) => ficSubject(namespace, sa)).sort());
      expect(fics.map((f) => f.name).sort()).toEqual(sas.map((sa) => ficName(CLUSTER, namespace, sa)).sort());
      for (const access of items) {
        expect(access.metadata.finalizers).toContain(FINALIZER);
        expect(access.status?.connection?.user).toBe(role);
      }
      expect(await rolesOfPrincipal(identity.principalId)).toEqual([role]);
      expect(await hasTablePrivilege(role, 'orders', 'SELECT')).toBe(true);
      expect(await hasTablePrivilege(role, 'items', 'SELECT')).toBe(false);
      const puts = ficPutsByStatus(countersBefore, await emulator.counters());
      // The emulator counts a request when its response is sent: a write whose caller was killed
      // while it was in flight still lands, uncounted, and the restarted controller must find it.
      const landedAfterKill = fics.length - (puts['201'] ?? 0);
      await emulator.setConfig({ writeLatencyMs: initialWriteLatencyMs });
      await second.stop();
      expect(await second.exited).toBe(0);
      console.log(
        `[faults] SIGKILL with ${ficCountAtKill}/${sas.length} FICs and ${readyAtKill}/${sas.length} Ready; ` +
          `restarted process converged in ${convergedMs} ms; FIC PUTs answered, by status, across both ${JSON.stringify(puts)}; ` +
          `${landedAfterKill} write(s) in flight at the kill landed after it`,
      );
    });

    it('two controller processes: one leads and reconciles; SIGKILL the leader and the other takes over within the lease time', async () => {
      const leaseName = `${run}-leader`;
      const leaseNamespace = harness!.azure.operator.namespace;
      const timings = { lease: 4, renew: 3, retry: 1 };
      const ports = [await freePort(), await freePort()];
      const candidates: ManagedProcess[] = [];
      for (const [i, port] of ports.entries()) {
        candidates.push(
          await startControllerProcess(`controller-elect-${i + 1}`, [
            '--leader-elect=true',
            `--leader-election-id=${leaseName}`,
            `--leader-election-lease-duration=${timings.lease}`,
            `--leader-election-renew-deadline=${timings.renew}`,
            `--leader-election-retry-period=${timings.retry}`,
            '--bind-address=127.0.0.1',
            `--metrics-port=${port}`,
          ]),
        );
      }
      const readLease = () =>
        coordination
          .readNamespacedLease({ namespace: leaseNamespace, name: leaseName })
          .catch(() => undefined);
      const scrape = async (port: number) => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const sum = (metric: string) =>
          text
            .split('\n')
            .filter((l) => l.startsWith(`${metric}{`) && l.includes('controller="entradatabaseaccess"'))
            .reduce((total, l) => total + Number(l.split(' ').pop()), 0);
        const master = /leader_election_master_status\{[^}]*\} (\d+)/.exec(text)?.[1];
        return { master: Number(master ?? -1), reconciles: sum('controller_runtime_reconcile_total') };
      };
      /** Which candidate a Lease holder is: the elector logs its identity with every line. */
      const indexOf = (holder: string | undefined) =>
        holder ? candidates.findIndex((p) => logOf(p).includes(`"identity":"${holder}"`)) : -1;

      const lease = await until(readLease, (l) => indexOf(l?.spec?.holderIdentity) >= 0, 30_000);
      const leaderIndex = indexOf(lease?.spec?.holderIdentity);
      expect(leaderIndex).toBeGreaterThanOrEqual(0);
      const leader = candidates[leaderIndex]!;
      const standby = candidates[1 - leaderIndex]!;
      const [leaderPort, standbyPort] = [ports[leaderIndex]!, ports[1 - leaderIndex]!];
      await waitForLog(leader, 'controller running');

      // The leader reconciles a new resource; the standby reconciles nothing.
      await createAccess(ns.elect, 'elect-1', {
        serviceAccountName: 'elect-1',
        identity: identities.elect.id,
        roleName: `${database}_elect`,
      });
      expect(isReady(await until(() => readAccess(ns.elect, 'elect-1'), isReady, 30_000))).toBe(true);
      const before = { leader: await scrape(leaderPort), standby: await scrape(standbyPort) };
      expect(before.leader).toMatchObject({ master: 1 });
      expect(before.leader.reconciles).toBeGreaterThan(0);
      expect(before.standby).toEqual({ master: 0, reconciles: 0 });
      expect(logOf(standby)).not.toContain('controller running');
      expect(logOf(standby)).not.toContain('became leader');

      // Crash the leader: no release, so the standby must wait for the lease to expire.
      const lastRenew = parseMicroTime((await readLease())?.spec?.renewTime) ?? Number.NaN;
      const killedAt = Date.now();
      await leader.kill();
      await createAccess(ns.elect, 'elect-2', {
        serviceAccountName: 'elect-2',
        identity: identities.elect.id,
        roleName: `${database}_elect`,
      });
      const leaderIdentity = lease?.spec?.holderIdentity;
      const taken = await until(
        readLease,
        (l) => Boolean(l?.spec?.holderIdentity) && l?.spec?.holderIdentity !== leaderIdentity,
        30_000,
      );
      const handoverMs = Date.now() - killedAt;
      const acquiredAfterRenewMs = (parseMicroTime(taken?.spec?.acquireTime) ?? Number.NaN) - lastRenew;
      await waitForLog(standby, 'became leader');
      expect(indexOf(taken?.spec?.holderIdentity)).toBe(1 - leaderIndex);
      expect((taken?.spec?.leaseTransitions ?? 0) > (lease?.spec?.leaseTransitions ?? 0)).toBe(true);
      // Not before the lease expired (no overlap), and within lease duration + one retry period.
      expect(acquiredAfterRenewMs).toBeGreaterThanOrEqual(timings.lease * 1000);
      expect(acquiredAfterRenewMs).toBeLessThanOrEqual((timings.lease + timings.retry * 1.2) * 1000 + 1000);
      expect(handoverMs).toBeLessThanOrEqual((timings.lease + timings.retry * 1.2) * 1000 + 1000);

      const ready = await until(() => readAccess(ns.elect, 'elect-2'), isReady, 30_000);
      const readyMs = Date.now() - killedAt;
      expect(isReady(ready), `${JSON.stringify(ready?.status)}\n${standby.tail(30)}`).toBe(true);
      const after = await scrape(standbyPort);
      expect(after.master).toBe(1);
      expect(after.reconciles).toBeGreaterThan(0);
      const fics = await ficsOf(identities.elect.id);
      expect(fics.map((f) => f.properties.subject).sort()).toEqual(
        [ficSubject(ns.elect, 'elect-1'), ficSubject(ns.elect, 'elect-2')].sort(),
      );
      console.log(
        `[faults] leader SIGKILLed; standby held the lease ${handoverMs} ms after the kill ` +
          `(${acquiredAfterRenewMs} ms after the last renewal; lease ${timings.lease} s, retry ${timings.retry} s); ` +
          `new resource Ready ${readyMs} ms after the kill; reconciles before the kill: leader ${before.leader.reconciles}, standby ${before.standby.reconciles}`,
      );
      // A graceful stop (SIGTERM, as a rolling update sends) exits 0 and releases the lease, so
      // the next candidate need not wait out the lease.
      await standby.stop();
      expect(await standby.exited).toBe(0);
      expect(logOf(standby)).toContain('released the lease');
      expect((await readLease())?.spec?.holderIdentity ?? '').toBe('');
    });
  },
);
