// Issue 8, load: the webhook at 5× the nominal rate of the benchmarks (1,000/s nominal, so
// 5,000/s), or at the highest rate this machine sustains if that is lower, for 60 s, while the
// controller in the same process reconciles a steady stream of EntraDatabaseAccess changes.
// There must be no failed admission: no non-2xx, no connection error, no timeout (the apiserver
// gives a webhook at most timeoutSeconds, 5 s here), and every answer equal to a sample checked to
// be `allowed: true` with the right patch. The p99 is printed, not asserted (no timed assertions).
//
// The measured maximum is the benchmark's: the inject-mode rate `npm run bench` sustained with
// p99 < 10 ms (bench/results.json, committed). Without that file a short upward probe
// (bench/load-generator.ts, the benchmark's own load generator) measures it here; on a machine too
// busy for any probe step it falls back to 80 % of the best rate answered without a failure.
// WEBHOOK_LOAD_RATE, WEBHOOK_LOAD_SEC and WEBHOOK_LOAD_PROBE_SEC override the rate cap, the
// duration and the probe's step length.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchAdmissionReview, checkAdmissionAnswer } from '../../bench/admission-review.ts';
import { connectionsFor, runLoad, searchMaxRate } from '../../bench/load-generator.ts';
import { type EntraAccessProcess, postOnce, scrape, startEntraAccess, sumOf } from '../../bench/operator.ts';
import { prepareWebhookNamespace } from '../../bench/webhook.ts';
import { POD_WEBHOOK_PATH } from '../../src/api/constants.ts';
import type { DatabasePrivilege } from '../../src/api/types.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  createAccess,
  createAppDatabase,
  createDatabaseServer,
  createOptedInNamespace,
  isReady,
  listAccesses,
  patchAccess,
} from '../harness/scenario.ts';

const harness = harnessInfo();

const NOMINAL_RATE = 1000;

/** The max rate with p99 < 10 ms that the last `npm run bench` measured for `mode`, if any. */
function benchmarkMaxRate(mode: 'label' | 'inject'): number | undefined {
  try {
    const results = JSON.parse(
      readFileSync(new URL('../../bench/results.json', import.meta.url), 'utf8'),
    ) as {
      webhook?: { modes?: Array<{ mode: string; search?: { maxRate?: number } }> };
    };
    const max = results.webhook?.modes?.find((m) => m.mode === mode)?.search?.maxRate;
    return max && max > 0 ? max : undefined;
  } catch {
    return undefined;
  }
}
const RATE_CAP = Number(process.env.WEBHOOK_LOAD_RATE ?? 5 * NOMINAL_RATE);
const LOAD_SEC = Number(process.env.WEBHOOK_LOAD_SEC ?? 60);
const PROBE_STEP_SEC = Number(process.env.WEBHOOK_LOAD_PROBE_SEC ?? 3);
/** The apiserver's limit for one admission call (timeoutSeconds ≤ 5). */
const ADMISSION_TIMEOUT_SEC = 5;
const CHURN_ACCESSES = 8;

describe.skipIf(!harness)('the webhook under load while the controller reconciles', () => {
  const info = harness!;
  const kubeConfig = adminKubeConfig(info);
  const custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const podNamespace = uniqueName('load-pods');
  const appNamespace = uniqueName('load-apps');
  const database = uniqueName('loaddb').replace('-', '_');
  const server = uniqueName('load-pg');
  let dir: string;
  let operator: EntraAccessProcess | undefined;
  let identities: string[] = [];

  beforeAll(async () => {
    dir = makeTempDir('webhook-load');
    const emulator = new AzureEmulatorClient(info.azure.url, { ca: readFileSync(info.caFile) });
    const group = uniqueName('load');
    identities = await Promise.all(
      [0, 1].map(
        async (i) =>
          (
            await emulator.createIdentity({
              subscriptionId: info.azure.operator.subscriptionId,
              resourceGroup: group,
              name: `churn-${i}`,
            })
          ).id,
      ),
    );
    await prepareWebhookNamespace(kubeConfig, podNamespace);
    await createOptedInNamespace(core, appNamespace, identities.join(','));
    await createAppDatabase(info, database);
    await createDatabaseServer(info, kubeConfig, {
      name: server,
      namespaces: [appNamespace],
      databases: [database],
    });
    operator = await startEntraAccess(info, {
      name: 'entra-access-load',
      dir,
      roles: ['webhook', 'controller'],
      injectionMode: 'inject',
      kubeConfig,
      clusterName: 'load',
    });
  });

  afterAll(async () => {
    await operator?.stop();
    if (dir) removeTempDir(dir);
  });

  it('admits every pod at min(5× nominal, measured max) for 60 s, with p99 reported', async () => {
    const url = operator!.webhookUrl(POD_WEBHOOK_PATH);
    const body = benchAdmissionReview(podNamespace);
    const sample = await postOnce(url, body, operator!.caFile);
    expect(sample.status).toBe(200);
    expect(checkAdmissionAnswer(sample.body, podNamespace, 'inject')).toBeUndefined();
    const base = {
      url,
      caFile: operator!.caFile,
      body,
      expectBody: sample.body,
      timeoutSec: ADMISSION_TIMEOUT_SEC,
    };

    // The benchmark's measured maximum, else measure: the highest rate (up to the cap) sustained
    // with p99 < 10 ms.
    const benchMax = benchmarkMaxRate('inject');
    const probe = await searchMaxRate({
      base,
      p99BoundMs: 10,
      startRate: 500,
      factor: 1.6,
      maxRate: RATE_CAP,
      stepSec: PROBE_STEP_SEC,
    });
    // On a machine too loaded for even the first step, the best rate achieved without failures.
    const fallback = Math.max(
      100,
      ...probe.steps
        .filter((s) => s.non2xx + s.errors + s.timeouts + s.mismatches === 0)
        .map((s) => Math.floor(s.achieved * 0.8)),
    );
    const rate = Math.min(RATE_CAP, benchMax ?? (probe.maxRate > 0 ? probe.maxRate : fallback));

    // Load, while the controller works through a stream of creations and spec changes.
    const reconcilesBefore = sumOf(
      await scrape(operator!.metricsUrl),
      'controller_runtime_reconcile_total',
      'controller="entradatabaseaccess"',
    );
    let loading = true;
    let changes = 0;
    const churn = (async () => {
      for (let i = 0; loading; i++) {
        const n = i % CHURN_ACCESSES;
        const name = `churn-${n}`;
        if (i < CHURN_ACCESSES) {
          await createAccess(custom, appNamespace, name, {
            serviceAccountName: `churn-sa-${n}`,
            identity: identities[n % identities.length] as string,
            serverRef: server,
            database,
            roleName: `${appNamespace}-${name}`,
          });
        } else {
          // Toggle TEMPORARY: each change is a grant or a revoke in the real PostgreSQL.
          const privileges: DatabasePrivilege[] = i % 2 === 0 ? ['CONNECT', 'TEMPORARY'] : ['CONNECT'];
          await patchAccess(custom, appNamespace, name, { grants: [{ target: 'database', privileges }] });
        }
        changes++;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    let result: Awaited<ReturnType<typeof runLoad>>;
    try {
      result = await runLoad({ ...base, rate, connections: connectionsFor(rate), durationSec: LOAD_SEC });
    } finally {
      loading = false;
      await churn;
    }
    const reconciles =
      sumOf(
        await scrape(operator!.metricsUrl),
        'controller_runtime_reconcile_total',
        'controller="entradatabaseaccess"',
      ) - reconcilesBefore;
    console.log(
      `[webhook-load] benchmark max ${benchMax ?? 'none'}/s; probe max ${probe.maxRate}/s (p99 < 10 ms; steps ${probe.steps
        .map((s) => `${s.rate}→${s.achieved}/s p99 ${s.latencyMs.p99} ms`)
        .join(
          ', ',
        )}); load ${rate}/s for ${LOAD_SEC} s: achieved ${result.achieved}/s, ${result.responses} admissions, ` +
        `p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, max ${result.latencyMs.max} ms; ` +
        `non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}, wrong answers ${result.mismatches}; ` +
        `controller: ${changes} changes, ${reconciles} reconciles meanwhile`,
    );

    expect(result.responses).toBeGreaterThan(0);
    expect({
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      wrongAnswers: result.mismatches,
    }).toEqual({ non2xx: 0, errors: 0, timeouts: 0, wrongAnswers: 0 });
    expect(result.statusCodes).toEqual({ 200: result.responses });
    // The controller really worked meanwhile, and ends converged.
    expect(reconciles).toBeGreaterThan(0);
    const accesses = await pollUntil(
      () => listAccesses(custom, appNamespace),
      (list) => list.length === CHURN_ACCESSES && list.every(isReady),
      120_000,
      1000,
    );
    expect(
      accesses
        .filter(isReady)
        .map((a) => a.metadata?.name)
        .sort(),
    ).toHaveLength(CHURN_ACCESSES);
  });
});
