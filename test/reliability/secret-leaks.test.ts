// Secrets (issue 8, item 5): no token, assertion or password appears in anything the operator
// produces. A realistic run — controller and webhook as processes at log level debug, several
// resources Ready, an app logging in, pods admitted, and failures (a refused identity, ARM 500s
// while writing a FIC, an Entra outage, a SQL error, a refused token exchange, a deletion) — then
// every token value the Azure emulator issued (ARM and PostgreSQL access tokens) and every client
// assertion (service-account JWT) it received is searched for, whole and by the signature part
// (a token printed half-redacted still leaks its signature), in: the operator processes' log
// files, every Event, every EntraDatabaseAccess/EntraDatabaseServer, /metrics of both processes,
// the harness's PostgreSQL log, and the objects the operator writes (ServiceAccounts, Namespaces,
// Pods, Secrets, ConfigMaps, Leases). A control scan of a scratch file proves the scan finds them.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_PLURAL } from '../../src/api/constants.ts';
import {
  AzureEmulatorClient,
  type CountersSnapshot,
  type IdentityView,
  type IssuedTokensSnapshot,
} from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, sleep, uniqueName } from '../harness/context.ts';
import { API, appPod, entraAccessWebhooks } from '../harness/kube.ts';
import { createCertificateAuthority, issueCertificate } from '../harness/pki.ts';
import { freePort } from '../harness/ports.ts';
import { type ManagedProcess, makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  appToken,
  conditionOf,
  createAccess,
  createAppDatabase,
  createDatabaseServer,
  deleteAccessAndWait,
  deleteAccessesAndWait,
  isReady,
  listAccesses,
  loginAndQuery,
  readAccess,
  startOperatorProcess,
  superuserQuery,
  writeOperatorToken,
} from '../harness/scenario.ts';
import { ARM_SCOPE, serviceAccountToken, workloadIdentityCredential } from '../harness/workload-identity.ts';

const harness = harnessInfo();
const SUBSCRIPTION = '00000000-0000-0000-0000-000000005ec2';

/** One value to look for: a whole secret, or a part of it that is enough to count as a leak. */
export interface Needle {
  label: string;
  value: string;
}

/**
 * What to look for, per JWT: the whole token and the two ends of its signature (32 characters
 * each, 192 bits: no accident produces them), so a token cut short or half-redacted is still found.
 */
export function needlesOf(label: string, jwt: string): Needle[] {
  const signature = jwt.split('.')[2] ?? '';
  const needles: Needle[] = [{ label, value: jwt }];
  if (signature.length >= 64) {
    needles.push({ label: `${label} (signature, start)`, value: signature.slice(0, 32) });
    needles.push({ label: `${label} (signature, end)`, value: signature.slice(-32) });
  }
  return needles;
}

/** `<needle label> in <source>` for every needle found in every source. */
export function findLeaks(sources: Record<string, string>, needles: Needle[]): string[] {
  const found: string[] = [];
  for (const [source, text] of Object.entries(sources)) {
    for (const needle of needles) if (text.includes(needle.value)) found.push(`${needle.label} in ${source}`);
  }
  return found;
}

function secretsOf(issued: IssuedTokensSnapshot, extra: Record<string, string>): Needle[] {
  const needles: Needle[] = [];
  for (const [i, t] of issued.accessTokens.entries())
    needles.push(...needlesOf(`access token #${i} (${t.scope}, client ${t.clientId})`, t.token));
  const assertions = new Set(issued.clientAssertions.map((a) => a.assertion));
  for (const [i, assertion] of [...assertions].entries())
    needles.push(...needlesOf(`client assertion #${i}`, assertion));
  for (const [label, jwt] of Object.entries(extra)) needles.push(...needlesOf(label, jwt));
  return needles;
}

describe.skipIf(!harness)(
  'secrets: no token or assertion in logs, Events, status, metrics or the database log',
  () => {
    const run = uniqueName('sec');
    const namespace = run;
    const rg = `${run}-rg`;
    const database = `${run.replace(/-/g, '_')}_db`;
    const server = `${run}-pg`;
    const configurationName = `${run}-webhook`;
    let kc: k8s.KubeConfig;
    let core: k8s.CoreV1Api;
    let custom: k8s.CustomObjectsApi;
    let emulator: AzureEmulatorClient;
    let dir: string;
    let operatorJwt = '';
    const ids: Record<string, IdentityView> = {};
    const processes: ManagedProcess[] = [];
    const metricsPorts: Record<string, number> = {};
    /** Service-account JWTs the test itself obtained, besides those the emulator saw. */
    const testJwts: Record<string, string> = {};
    let armAtStart: CountersSnapshot['arm'] | undefined;

    const ready = (name: string) =>
      pollUntil(() => readAccess(custom, namespace, name), isReady, 90_000, 200);

    beforeAll(async () => {
      kc = adminKubeConfig(harness!);
      core = kc.makeApiClient(k8s.CoreV1Api);
      custom = kc.makeApiClient(k8s.CustomObjectsApi);
      emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
      dir = makeTempDir('secrets');
      for (const name of ['orders', 'billing', 'reports', 'broken', 'elsewhere']) {
        ids[name] = await emulator.createIdentity({
          subscriptionId: SUBSCRIPTION,
          resourceGroup: name === 'elsewhere' ? `${rg}-other` : rg,
          name,
        });
      }
      await createAppDatabase(harness!, database, 'CREATE TABLE orders (id int, note text);');
      await superuserQuery(harness!, `CREATE ROLE "${run}_readers" NOLOGIN`);
      await superuserQuery(
        harness!,
        `GRANT "${run}_readers" TO "${harness!.azure.operator.postgresAdminRole}" WITH ADMIN OPTION`,
      );
      await createDatabaseServer(harness!, kc, {
        name: server,
        namespaces: [namespace],
        databases: [database, `${database}_gone`],
        memberOf: [`${run}_readers`],
      });

      // The webhook's serving certificate, from a CA of this test (as cert-manager would make it).
      const ca = await createCertificateAuthority(`${run} webhook CA`);
      const serving = await issueCertificate(ca, {
        commonName: 'entra-access-webhook',
        usage: 'server',
        ipAddresses: ['127.0.0.1'],
        dnsNames: ['localhost'],
      });
      const certDir = join(dir, 'certs');
      mkdirSync(certDir, { recursive: true });
      writeFileSync(join(certDir, 'tls.crt'), serving.certPem);
      writeFileSync(join(certDir, 'tls.key'), serving.keyPem, { mode: 0o600 });

      const tokenFile = await writeOperatorToken(harness!, kc, dir);
      operatorJwt = readFileSync(tokenFile, 'utf8').trim();
      const webhookPort = await freePort();
      metricsPorts.webhook = await freePort();
      metricsPorts.controller = await freePort();
      const common = [
        '--log-level=debug',
        '--health-port=0',
        '--bind-address=127.0.0.1',
        `--tenant-id=${harness!.azure.tenantId}`,
      ];
      processes.push(
        await startOperatorProcess(harness!, {
          name: 'webhook',
          logDir: dir,
          tokenFile,
          clusterName: run,
          args: [
            '--webhook',
            ...common,
            `--metrics-port=${metricsPorts.webhook}`,
            `--webhook-port=${webhookPort}`,
            `--cert-dir=${certDir}`,
            '--injection-mode=inject',
          ],
        }),
      );
      // Failure: the Entra token endpoint is down as the controller starts (its first ARM and
      // PostgreSQL tokens fail, more times than the SDK retries), then recovers.
      await emulator.addFault({ target: 'entra', pathContains: '/oauth2/v2.0/token', status: 503, count: 8 });
      processes.push(
        await startOperatorProcess(harness!, {
          name: 'controller',
          logDir: dir,
          tokenFile,
          clusterName: run,
          args: [
            '--controller',
            ...common,
            `--metrics-port=${metricsPorts.controller}`,
            '--leader-elect=false',
            '--resync-period=10',
          ],
        }),
      );

      const base = `https://127.0.0.1:${webhookPort}`;
      const caBundle = Buffer.from(ca.certPem).toString('base64');
      const optedIn = { 'entra-access.io/workload-identity': 'enabled' };
      await kc.makeApiClient(k8s.AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
        body: {
          metadata: { name: configurationName },
          webhooks: entraAccessWebhooks({
            baseUrl: base,
            caBundle,
            optedIn: { matchLabels: { 'entra-access-test': run, ...optedIn } },
            namespaces: { matchLabels: { 'entra-access-test': run } },
          }),
        },
      });
      await core.createNamespace({
        body: {
          metadata: {
            name: namespace,
            labels: { 'entra-access-test': run },
            annotations: {
              ...optedIn,
              'entra-access.io/allowed-identities': `/subscriptions/${SUBSCRIPTION}/resourceGroups/${rg}/*`,
            },
          },
        },
      });
      await pollUntil(
        () => core.readNamespace({ name: namespace }),
        (ns) => ns.metadata?.labels?.['entra-access.io/workload-identity'] === 'enabled',
        30_000,
        200,
      );
    });

    afterAll(async () => {
      if (!kc) return;
      await deleteAccessesAndWait(custom, namespace, 60_000);
      await emulator?.clearFaults().catch(() => {});
      await kc
        .makeApiClient(k8s.AdmissionregistrationV1Api)
        .deleteMutatingWebhookConfiguration({ name: configurationName })
        .catch(() => {});
      for (const proc of processes) await proc.stop();
      await custom.deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name: server }).catch(() => {});
      await core
        .deleteNamespacedSecret({ namespace: harness!.azure.operator.namespace, name: `${server}-ca` })
        .catch(() => {});
      await core.deleteNamespace({ name: namespace }).catch(() => {});
      await superuserQuery(harness!, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`).catch(() => {});
      const roles = ['orders', 'billing', 'reports', 'broken'].map((n) => `${run}-${n}`);
      for (const role of [...roles, `${run}_readers`]) {
        await superuserQuery(harness!, `DROP ROLE IF EXISTS "${role}"`).catch(() => {});
      }
      for (const identity of Object.values(ids)) await emulator.deleteIdentity(identity.id).catch(() => {});
      if (dir) removeTempDir(dir);
    });

    it('runs the scenario: resources Ready, apps log in, pods admitted, and a few failures', async () => {
      const grants = [
        { target: 'database' as const, privileges: ['CONNECT' as const] },
        {
          target: 'tables' as const,
          schema: 'public',
          privileges: ['SELECT' as const, 'INSERT' as const],
          tables: ['orders'],
        },
      ];
      for (const name of ['orders', 'billing']) {
        await createAccess(custom, namespace, name, {
          serviceAccountName: name,
          identity: ids[name]!.id,
          serverRef: server,
          database,
          roleName: `${run}-${name}`,
          memberOf: [`${run}_readers`],
          grants,
        });
      }
      for (const name of ['orders', 'billing']) expect(isReady(await ready(name)), name).toBe(true);

      // The apps log in, twice each (a pool's second connection takes a fresh token).
      for (const name of ['orders', 'billing']) {
        for (let i = 0; i < 2; i++) {
          const token = await appToken(harness!, kc, {
            namespace,
            serviceAccount: name,
            clientId: ids[name]!.clientId,
          });
          expect(
            await loginAndQuery(
              harness!,
              { database, role: `${run}-${name}`, token },
              'SELECT count(*)::int AS n FROM orders',
            ),
          ).toBe(JSON.stringify([{ n: 0 }]));
        }
      }
      // A pod of an enabled service account, through the webhook (inject mode: env + token volume).
      const pod = await core.createNamespacedPod({
        namespace,
        body: appPod('orders', { generateName: 'orders-' }),
      });
      expect(pod.metadata?.labels?.['azure.workload.identity/use']).toBe('true');
      expect(pod.spec?.containers[0]?.env?.map((e) => e.name)).toContain('AZURE_FEDERATED_TOKEN_FILE');

      // Failure 1: an identity the namespace does not allow.
      await createAccess(custom, namespace, 'elsewhere', {
        serviceAccountName: 'elsewhere',
        identity: ids.elsewhere!.id,
        serverRef: server,
        database,
      });
      // Failure 2: ARM answers 500 to the FIC writes for a while (more than the SDK retries).
      armAtStart = (await emulator.counters()).arm;
      await emulator.addFault({ target: 'arm', method: 'PUT', status: 500, count: 10 });
      await createAccess(custom, namespace, 'reports', {
        serviceAccountName: 'reports',
        identity: ids.reports!.id,
        serverRef: server,
        database,
        roleName: `${run}-reports`,
      });
      // Failure 3: a PostgreSQL error (a database the server allows but that does not exist).
      await createAccess(custom, namespace, 'broken', {
        serviceAccountName: 'broken',
        identity: ids.broken!.id,
        serverRef: server,
        roleName: `${run}-broken`,
        database: `${database}_gone`,
      });
      const refused = await pollUntil(
        () => readAccess(custom, namespace, 'elsewhere'),
        (a) => conditionOf(a)?.reason === 'IdentityNotAllowed',
        30_000,
        200,
      );
      expect(conditionOf(refused)?.reason).toBe('IdentityNotAllowed');
      expect(isReady(await ready('reports'))).toBe(true);
      const broken = await pollUntil(
        () => readAccess(custom, namespace, 'broken'),
        (a) => conditionOf(a, 'DatabaseRoleReady')?.status === 'False',
        60_000,
        200,
      );
      expect(conditionOf(broken, 'DatabaseRoleReady')?.status, JSON.stringify(broken?.status)).toBe('False');
      // Failure 4: an app of a service account no FIC trusts (AADSTS70021) and a wrong-role login.
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'intruder' } } });
      testJwts['intruder SA token'] = await serviceAccountToken(kc, namespace, 'intruder');
      const intruder = await workloadIdentityCredential(
        harness!,
        ids.orders!.clientId,
        testJwts['intruder SA token'],
      );
      await expect(intruder.getToken(ARM_SCOPE)).rejects.toThrow(/AADSTS70021/);
      const billingToken = await appToken(harness!, kc, {
        namespace,
        serviceAccount: 'billing',
        clientId: ids.billing!.clientId,
      });
      expect(
        await loginAndQuery(harness!, { database, role: `${run}-orders`, token: billingToken }, 'SELECT 1'),
      ).toMatch(/^ERROR/);
      // A deletion (Delete policy): role dropped, FIC deleted.
      await deleteAccessAndWait(custom, namespace, 'billing', { timeoutMs: 60_000 });
      // Let a resync or two pass, so steady-state logging is in the logs too.
      await sleep(12_000);
    });

    /** Everything the run produced that a person or a tool could read. */
    async function haystacks(): Promise<Record<string, string>> {
      const sources: Record<string, string> = {};
      for (const proc of processes)
        sources[`log of ${proc.logFile.split('/').at(-1)}`] = readFileSync(proc.logFile, 'utf8');
      for (const [name, port] of Object.entries(metricsPorts)) {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`);
        expect(response.status, `/metrics of ${name}`).toBe(200);
        sources[`/metrics of ${name}`] = await response.text();
      }
      sources['PostgreSQL log'] = readFileSync(harness!.postgres.logFile ?? '', 'utf8');
      sources.Events = JSON.stringify((await core.listEventForAllNamespaces()).items);
      sources.EntraDatabaseAccesses = JSON.stringify(await listAccesses(custom));
      sources.EntraDatabaseServers = JSON.stringify(
        ((await custom.listClusterCustomObject({ ...API, plural: SERVER_PLURAL })) as { items: unknown[] })
          .items,
      );
      sources.ServiceAccounts = JSON.stringify((await core.listServiceAccountForAllNamespaces()).items);
      sources.Namespaces = JSON.stringify((await core.listNamespace()).items);
      sources.Pods = JSON.stringify((await core.listPodForAllNamespaces()).items);
      sources.Secrets = JSON.stringify((await core.listSecretForAllNamespaces()).items);
      sources.ConfigMaps = JSON.stringify((await core.listConfigMapForAllNamespaces()).items);
      sources.Leases = JSON.stringify(
        (await kc.makeApiClient(k8s.CoordinationV1Api).listLeaseForAllNamespaces()).items,
      );
      return sources;
    }

    it('no token the emulator issued or received appears anywhere the run wrote', async () => {
      const issued = await emulator.issuedTokens();
      // The scan is only as good as its list: it must hold each kind of secret the run used.
      const scopes = new Set(issued.accessTokens.map((t) => t.scope));
      expect(scopes).toContain(ARM_SCOPE);
      expect(scopes).toContain('https://ossrdbms-aad.database.windows.net/.default');
      const operatorTokens = issued.accessTokens.filter(
        (t) => t.clientId === harness!.azure.operator.clientId,
      );
      expect(operatorTokens.length).toBeGreaterThanOrEqual(2); // ARM and PostgreSQL
      const outcomes = new Set(issued.clientAssertions.map((a) => a.outcome));
      expect(outcomes).toContain('success');
      expect(outcomes).toContain('AADSTS70021');
      expect([...outcomes].some((o) => o.startsWith('fault-'))).toBe(true);
      expect(issued.clientAssertions.map((a) => a.assertion)).toContain(operatorJwt);
      expect(issued.dropped).toEqual({ accessTokens: 0, clientAssertions: 0 });

      const needles = secretsOf(issued, { 'operator SA token (file)': operatorJwt, ...testJwts });
      const sources = await haystacks();
      for (const [source, text] of Object.entries(sources)) expect(text.length, source).toBeGreaterThan(0);
      // The operator's logs are real: debug lines, admissions and the failures were logged.
      const logs = Object.entries(sources)
        .filter(([source]) => source.startsWith('log of'))
        .map(([, text]) => text)
        .join('\n');
      expect(logs).toContain('"level":"debug"');
      // The failure paths ran in the operator, where SDK errors (which can carry requests) get logged.
      expect(logs).toContain('"level":"error"');
      // The Entra outage reached a surface the scan covers: a log line, or (when no access resource
      // was reconciled during it) the server's status message and Warning Event.
      expect(Object.values(sources).join('\n')).toContain('AADSTS90000');
      expect(logs).toContain(`database \\"${database}_gone\\" does not exist`); // PostgreSQL

      const counters = await emulator.counters();
      console.info(`token requests by outcome: ${JSON.stringify(counters.token.byOutcome)}`);
      // ARM 500s were answered (the SDK's retries may hide them from the log; its error path ran).
      const ficPut500 = (arm: CountersSnapshot['arm'] | undefined) =>
        arm?.byOperationAndStatus.ficPut?.['500'] ?? 0;
      expect(ficPut500(counters.arm) - ficPut500(armAtStart)).toBeGreaterThan(0);

      expect(findLeaks(sources, needles)).toEqual([]);
      console.info(
        `secret scan: ${issued.accessTokens.length} access tokens, ${new Set(issued.clientAssertions.map((a) => a.assertion)).size} client assertions, ${needles.length} needles in ${Object.keys(sources).length} sources (${Object.values(sources).reduce((n, t) => n + t.length, 0)} characters)`,
      );
    });

    it('the scan finds a token written into a file, whole or by a part of its signature', async () => {
      const issued = await emulator.issuedTokens();
      const access = issued.accessTokens.at(-1)!.token;
      const assertion = issued.clientAssertions.at(-1)!.assertion;
      const [header, payload, signature] = access.split('.') as [string, string, string];
      const scratch = join(dir, 'scratch.log');
      writeFileSync(
        scratch,
        [
          `{"level":"info","msg":"oops","authorization":"Bearer ${access}"}`,
          `{"level":"info","msg":"redacted?","token":"${header}.${payload}.***${signature.slice(-40)}"}`,
          `{"level":"info","assertion":"${assertion.slice(0, -10)}"}`,
        ].join('\n'),
      );
      const needles = secretsOf(issued, {});
      const found = findLeaks({ scratch: readFileSync(scratch, 'utf8') }, needles);
      expect(found.length).toBeGreaterThanOrEqual(4);
      expect(found.some((f) => /^access token #\d+ .*\) in scratch$/.test(f))).toBe(true);
      expect(found.some((f) => f.includes('(signature, end)'))).toBe(true);
      expect(found.some((f) => /^client assertion #\d+ \(signature, start\) in scratch$/.test(f))).toBe(true);
      // And a clean file is clean.
      expect(findLeaks({ clean: '{"level":"info","msg":"reconciled"}' }, needles)).toEqual([]);
    });
  },
);
