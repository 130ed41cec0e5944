// Scenarios 2 and 3, at scale: one `entra-access run` process with both roles (webhook and
// controller, both caching) against the harness with N namespaces, M ServiceAccounts and K
// EntraDatabaseAccess over I identities (spread over S subscriptions), the emulator answering ARM
// with 50 ms latency and throttling reads and writes at Azure's documented rates (its default).
// Measures: time to all Ready; ARM reads/writes/429s and token requests (emulator counters); SQL
// statements and DDL (PostgreSQL statement log, log_statement=all, lines of the operator's admin
// role); then one full no-change resync (short --resync-period), its deltas and its ARM read rates
// per identity and per subscription; then RSS and heap.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {
  AzureEmulatorClient,
  type CountersSnapshot,
  type RateLimits,
} from '../test/harness/azure-emulator/client.ts';
import type { HarnessInfo } from '../test/harness/harness.ts';
import {
  createAccess,
  createAppDatabase,
  createDatabaseServer,
  isReady,
  listAccesses,
  superuserQuery,
} from '../test/harness/scenario.ts';
import { procMemory, scrape, startEntraAccess, sumOf } from './operator.ts';
import type { ScaleParams } from './sizes.ts';

export interface StatementCounts {
  statements: number;
  ddl: number;
}

export interface Costs {
  armReads: number;
  armWrites: number;
  arm429: number;
  /** ARM requests by operation (identityGet, ficList, ficGet, ficPut, ficDelete). */
  armByOperation: Record<string, number>;
  /** 429s by the limit that refused them (`list/perResource`, …; `injected` for a fault rule). */
  arm429ByLimit: Record<string, number>;
  tokenRequests: number;
  tokenRequestsByScope: Record<string, number>;
  sqlStatements: number;
  ddl: number;
  reconciles: number;
}

/** ARM reads per second during the resync: the mean over identities (subscriptions) and the largest. */
export interface ReadRates {
  perIdentity: { mean: number; max: number };
  perSubscription: { mean: number; max: number };
}

export interface ScaleResults {
  params: ScaleParams;
  /** The emulator's ARM limits during the run (Azure's documented ones unless changed). */
  armLimits: RateLimits;
  setupSec: { objects: number };
  controller: {
    timeToAllReadySec: number | null;
    ready: number;
    total: Costs;
    perResource: Record<string, number>;
    resync: Costs & { waitedSec: number; complete: boolean; readRates: ReadRates };
  };
  memory: {
    afterStart: { rssBytes: number; heapUsedBytes: number };
    cached: {
      rssBytes: number;
      peakRssBytes: number;
      heapUsedBytes: number;
      heapTotalBytes: number;
      externalBytes: number;
    };
    objects: { namespaces: number; serviceAccounts: number; accesses: number };
  };
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await task(item);
      }
    }),
  );
}

/** Statements in the PostgreSQL log by `role` since byte `offset`. */
export function countStatements(
  logFile: string,
  role: string,
  offset = 0,
): StatementCounts & { size: number } {
  const text = readFileSync(logFile).subarray(offset).toString('utf8');
  const mine = new RegExp(
    ` ${role.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}@\\S+ LOG: {2}(statement|execute [^:]*): (.*)$`,
  );
  let statements = 0;
  let ddl = 0;
  for (const line of text.split('\n')) {
    const match = mine.exec(line);
    if (!match) continue;
    statements++;
    if (/^\s*(GRANT|REVOKE|CREATE|ALTER|DROP|SECURITY LABEL)\b/i.test(match[2] ?? '')) ddl++;
  }
  return { statements, ddl, size: offset + Buffer.byteLength(text) };
}

function costs(
  before: CountersSnapshot,
  after: CountersSnapshot,
  sql: StatementCounts,
  reconciles: number,
): Costs {
  return {
    armReads: after.arm.reads - before.arm.reads,
    armWrites: after.arm.writes - before.arm.writes,
    arm429: (after.arm.byStatus['429'] ?? 0) - (before.arm.byStatus['429'] ?? 0),
    armByOperation: deltas(before.arm.byOperation, after.arm.byOperation),
    arm429ByLimit: deltas(before.arm.throttled.byLimit, after.arm.throttled.byLimit),
    tokenRequests: after.token.total - before.token.total,
    tokenRequestsByScope: deltas(before.token.byScope, after.token.byScope),
    sqlStatements: sql.statements,
    ddl: sql.ddl,
    reconciles,
  };
}

/** after − before, key by key, leaving out zeros. */
function deltas(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, n] of Object.entries(after)) {
    const delta = n - (before[key] ?? 0);
    if (delta) out[key] = delta;
  }
  return out;
}

/** Reads per second over `seconds` by each of `keys` (those with none count as 0). */
function rates(
  before: Record<string, number>,
  after: Record<string, number>,
  keys: string[],
  seconds: number,
): { mean: number; max: number } {
  const per = keys.map((key) => ((after[key] ?? 0) - (before[key] ?? 0)) / Math.max(1, seconds));
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    mean: round(per.reduce((a, b) => a + b, 0) / Math.max(1, per.length)),
    max: round(Math.max(0, ...per)),
  };
}

const subscriptionId = (n: number) =>
  `00000000-0000-0000-0000-${(0xbe0000 + n).toString(16).padStart(12, '0')}`;

export async function benchScale(
  info: HarnessInfo,
  kubeConfig: k8s.KubeConfig,
  dir: string,
  params: ScaleParams,
): Promise<ScaleResults> {
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const emulator = new AzureEmulatorClient(info.azure.url, { ca: readFileSync(info.caFile) });
  const admin = info.azure.operator.postgresAdminRole;
  const logFile = info.postgres.logFile;
  if (!logFile)
    throw new Error('the scale scenario counts SQL in the harness PostgreSQL log; none is configured');

  // Every statement of the operator's admin role is logged, so SQL is counted, not estimated (the
  // harness logs DDL only, from the command line, which ALTER SYSTEM cannot override; a role
  // setting applies to the sessions the operator opens from now on).
  await superuserQuery(info, `ALTER ROLE "${admin}" SET log_statement = 'all'`);

  const setupStarted = Date.now();
  const identities = await Promise.all(
    Array.from({ length: params.identities }, (_, i) =>
      emulator.createIdentity({
        subscriptionId: subscriptionId(i % params.subscriptions),
        resourceGroup: 'bench-apps',
        name: `bench-app-${i}`,
      }),
    ),
  );
  const namespaces = Array.from({ length: params.namespaces }, (_, i) => `bench-${i}`);
  // Access k lives in namespace k % N and uses identity k % I: each team's apps share its identities.
  const accesses = Array.from({ length: params.accesses }, (_, k) => ({
    namespace: namespaces[k % params.namespaces] as string,
    index: Math.floor(k / params.namespaces),
    identity: identities[k % params.identities]?.id as string,
  }));
  const allowed = new Map<string, Set<string>>();
  for (const a of accesses) {
    const set = allowed.get(a.namespace) ?? new Set<string>();
    set.add(a.identity);
    allowed.set(a.namespace, set);
  }
  await pool(namespaces, 16, (name) =>
    core.createNamespace({
      body: {
        metadata: {
          name,
          annotations: {
            'entra-access.io/workload-identity': 'enabled',
            'entra-access.io/allowed-identities': [...(allowed.get(name) ?? [])].join(','),
          },
        },
      },
    }),
  );
  const perNamespace = Math.ceil(params.serviceAccounts / params.namespaces);
  const serviceAccounts = namespaces.flatMap((namespace) =>
    Array.from({ length: perNamespace }, (_, j) => ({ namespace, name: `app-${j}` })),
  );
  await pool(serviceAccounts, 64, (sa) =>
    core.createNamespacedServiceAccount({ namespace: sa.namespace, body: { metadata: { name: sa.name } } }),
  );
  await createAppDatabase(
    info,
    'benchdb',
    'CREATE TABLE public.orders (id bigint PRIMARY KEY, total numeric)',
  );
  await createDatabaseServer(info, kubeConfig, { name: 'bench-pg', namespaces, databases: ['benchdb'] });
  const objectsSec = (Date.now() - setupStarted) / 1000;
  log(
    `scale: ${namespaces.length} namespaces, ${serviceAccounts.length} service accounts, ${identities.length} identities in ${objectsSec} s`,
  );

  await emulator.addFault({ target: 'arm', latencyMs: params.armLatencyMs });
  // Azure's read and write limits are the emulator's default; recorded with the results.
  const armLimits = (await emulator.getConfig()).rateLimits;

  const operator = await startEntraAccess(info, {
    name: 'operator-scale',
    dir,
    roles: ['webhook', 'controller'],
    kubeConfig,
    ...(params.entry ? { entry: params.entry } : {}),
    ...(params.heapSnapshotDir
      ? { nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${params.heapSnapshotDir}`] }
      : {}),
    args: [`--max-concurrent-reconciles=${params.concurrency}`, `--resync-period=${params.resyncPeriodSec}`],
  });
  try {
    const startSamples = await scrape(operator.metricsUrl);
    const afterStart = {
      rssBytes: sumOf(startSamples, 'process_resident_memory_bytes'),
      heapUsedBytes: sumOf(startSamples, 'nodejs_heap_size_used_bytes'),
    };
    const reconcileCount = async () =>
      sumOf(
        await scrape(operator.metricsUrl),
        'controller_runtime_reconcile_total',
        'controller="entradatabaseaccess"',
      );

    // --- time to all Ready ---
    const counters0 = await emulator.counters();
    const sql0 = countStatements(logFile, admin);
    const reconciles0 = await reconcileCount();
    const started = Date.now();
    await pool(accesses, 16, (a) =>
      createAccess(custom, a.namespace, `access-${a.index}`, {
        serviceAccountName: `app-${a.index}`,
        identity: a.identity,
        serverRef: 'bench-pg',
        database: 'benchdb',
        roleName: `${a.namespace}-app-${a.index}`,
        grants: [
          { target: 'database', privileges: ['CONNECT'] },
          { target: 'schema', schema: 'public', privileges: ['USAGE'] },
          { target: 'tables', schema: 'public', tables: ['orders'], privileges: ['SELECT', 'INSERT'] },
        ],
      }),
    );
    log(`scale: ${accesses.length} EntraDatabaseAccess created in ${(Date.now() - started) / 1000} s`);
    let ready = 0;
    let timeToAllReadySec: number | null = null;
    const deadline = started + params.readyTimeoutSec * 1000;
    let lastLog = 0;
    while (Date.now() < deadline) {
      const list = (await listAccesses(custom)).filter((a) => a.metadata?.namespace?.startsWith('bench-'));
      ready = list.filter(isReady).length;
      if (ready === accesses.length) {
        timeToAllReadySec = (Date.now() - started) / 1000;
        break;
      }
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        const c = await emulator.counters();
        log(
          `scale: ${ready}/${accesses.length} Ready after ${Math.round((Date.now() - started) / 1000)} s (ARM writes ${c.arm.writes - counters0.arm.writes}, 429s ${(c.arm.byStatus['429'] ?? 0) - (counters0.arm.byStatus['429'] ?? 0)})`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    const counters1 = await emulator.counters();
    const sql1 = countStatements(logFile, admin, sql0.size);
    const reconciles1 = await reconcileCount();
    const total = costs(counters0, counters1, sql1, reconciles1 - reconciles0);
    log(
      `scale: ${ready}/${accesses.length} Ready in ${timeToAllReadySec ?? `>${params.readyTimeoutSec}`} s; ${JSON.stringify(total)}`,
    );
    const per = (n: number) => Math.round((n / Math.max(1, ready)) * 100) / 100;
    const perResource = {
      armReads: per(total.armReads),
      armWrites: per(total.armWrites),
      tokenRequests: per(total.tokenRequests),
      sqlStatements: per(total.sqlStatements),
      ddl: per(total.ddl),
      reconciles: per(total.reconciles),
    };

    // --- one full no-change resync: every resource reconciled once more, nothing changed ---
    // Let the reconciles triggered by the last status writes finish first.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const counters2 = await emulator.counters();
    const sql2 = countStatements(logFile, admin, sql1.size);
    const reconciles2 = await reconcileCount();
    const resyncStarted = Date.now();
    const resyncDeadline = resyncStarted + (params.resyncPeriodSec * 2 + 30) * 1000;
    let reconciles3 = reconciles2;
    while (Date.now() < resyncDeadline && reconciles3 - reconciles2 < accesses.length) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      reconciles3 = await reconcileCount();
    }
    const counters3 = await emulator.counters();
    const sql3 = countStatements(logFile, admin, sql2.size);
    const waitedSec = (Date.now() - resyncStarted) / 1000;
    const resync = {
      ...costs(counters2, counters3, sql3, reconciles3 - reconciles2),
      waitedSec,
      complete: reconciles3 - reconciles2 >= accesses.length,
      readRates: {
        perIdentity: rates(
          counters2.arm.readsByIdentity,
          counters3.arm.readsByIdentity,
          identities.map((i) => i.id.toLowerCase()),
          waitedSec,
        ),
        perSubscription: rates(
          counters2.arm.readsBySubscription,
          counters3.arm.readsBySubscription,
          Array.from({ length: params.subscriptions }, (_, n) => subscriptionId(n).toLowerCase()),
          waitedSec,
        ),
      },
    };
    log(`scale: resync ${JSON.stringify(resync)}`);

    // --- memory, with everything cached; sampled a few times as the heap settles ---
    let cached = { rssBytes: 0, peakRssBytes: 0, heapUsedBytes: 0, heapTotalBytes: 0, externalBytes: 0 };
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const samples = await scrape(operator.metricsUrl);
      const mem = procMemory(operator.pid);
      cached = {
        rssBytes: mem.rss,
        peakRssBytes: mem.peakRss,
        heapUsedBytes: sumOf(samples, 'nodejs_heap_size_used_bytes'),
        heapTotalBytes: sumOf(samples, 'nodejs_heap_size_total_bytes'),
        externalBytes: sumOf(samples, 'nodejs_external_memory_bytes'),
      };
    }
    log(`scale: memory ${JSON.stringify(cached)}`);
    if (params.heapSnapshotDir) {
      // Analyse with: node bench/heap-top.ts <file>.heapsnapshot
      process.kill(operator.pid, 'SIGUSR2');
      let last = -1;
      for (let i = 0; i < 120; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const size = readdirSync(params.heapSnapshotDir)
          .filter((f) => f.endsWith('.heapsnapshot'))
          .reduce((sum, f) => sum + statSync(join(params.heapSnapshotDir ?? '', f)).size, 0);
        if (size > 0 && size === last) break;
        last = size;
      }
      log(`scale: heap snapshot written to ${params.heapSnapshotDir}`);
    }
    return {
      params,
      armLimits,
      setupSec: { objects: objectsSec },
      controller: { timeToAllReadySec, ready, total, perResource, resync },
      memory: {
        afterStart,
        cached,
        objects: {
          namespaces: namespaces.length,
          serviceAccounts: serviceAccounts.length,
          accesses: accesses.length,
        },
      },
    };
  } finally {
    await operator.stop();
    await superuserQuery(info, `ALTER ROLE "${admin}" RESET log_statement`).catch(() => {});
    await emulator.clearFaults().catch(() => {});
  }
}
