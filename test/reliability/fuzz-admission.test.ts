// Issue 8, bad input: property-based fuzzing of the admission endpoints of the real
// `entra-access run --webhook` process over HTTPS, its caches backed by the harness apiserver.
//
// Properties, for thousands of random and malformed requests:
// - the process never crashes (same pid, /healthz OK at the end) and never answers 5xx;
// - every answer is a 4xx with a JSON `error`, or a 200 AdmissionReview for the same uid that is
//   either allowed with a base64 JSONPatch applying cleanly to the object sent (no `remove` except
//   the namespace opt-in label, no field lost or changed), or a denial with a reason (never an
//   InternalError, which would mean the policy threw);
// - for well-typed objects in opted-in namespaces the policy holds (label added, env/volume
//   injected, ephemeral containers untouched, a denial names the bounds) and a reinvocation with
//   the patched object patches nothing.
// Seed: FUZZ_SEED (default in support/arbitraries.ts), printed in every failure.

import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as k8s from '@kubernetes/client-node';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { createCertificateAuthority, issueCertificate } from '../harness/pki.ts';
import { freePort } from '../harness/ports.ts';
import { type ManagedProcess, makeTempDir, removeTempDir, startProcess } from '../harness/processes.ts';
import { MAIN_SCRIPT } from '../harness/scenario.ts';
import * as arb from './support/arbitraries.ts';
import { applyPatch, type JsonPatchOperation, lostOrChanged } from './support/json-patch.ts';

const harness = harnessInfo();
/** FUZZ_MAIN runs another copy of the CLI (e.g. a mutated one, to prove these checks can fail). */
const MAIN = process.env.FUZZ_MAIN ?? MAIN_SCRIPT;
/** Answers seen, by kind, so a run that stopped reaching the policy shows. */
const outcomes: Record<string, number> = {};
const count = (what: string): void => {
  outcomes[what] = (outcomes[what] ?? 0) + 1;
};

const MAX_REQUEST_BYTES = 256 * 1024;
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const AUTHORITY = 'https://login.microsoftonline.com/';
const OWN_NAMESPACE = 'entra-access-system';
const NS_CLIENT_ID = 'ns-default-client';
const SA_CLIENT_ID = 'sa-client-id';
const USE = 'azure.workload.identity/use';
const OPT_IN = 'entra-access.io/workload-identity';
const CLIENT_ID = 'azure.workload.identity/client-id';
const TENANT_ID = 'azure.workload.identity/tenant-id';
const TOKEN_EXPIRATION = 'azure.workload.identity/service-account-token-expiration';
const SKIP = 'azure.workload.identity/skip-containers';
const ENV_NAMES = [
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_AUTHORITY_HOST',
];
const TOKEN_VOLUME = 'azure-identity-token';
const TOKEN_MOUNT = '/var/run/secrets/azure/tokens';
const PATHS = {
  Pod: '/mutate-v1-pod',
  ServiceAccount: '/mutate-v1-serviceaccount',
  Namespace: '/mutate-v1-namespace',
};

type Obj = Record<string, unknown>;
interface Answer {
  status: number;
  body: string;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: unknown, k: string): unknown => (isObj(o) && Object.hasOwn(o, k) ? o[k] : undefined);
const at = (o: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((c, k) => own(c, k), o);
const nonBlank = (v: unknown): string | undefined =>
  typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
const strOrUndef = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

describe.skipIf(!harness)('fuzzing the admission endpoints of the real webhook process', () => {
  let dir: string;
  let ca: string;
  let agent: Agent;
  let proc: ManagedProcess;
  let pid: number | undefined;
  const ports = { webhook: 0, metrics: 0, health: 0 };
  const ns = { on: uniqueName('fz-on'), nodefault: uniqueName('fz-nodef'), off: uniqueName('fz-off') };
  let cases = 0;

  /** The namespace placeholder in generated reviews, resolved to the real names. */
  const resolveNamespace = (value: unknown): unknown =>
    value === 'NS_ON' ? ns.on : value === 'NS_NODEFAULT' ? ns.nodefault : value === 'NS_OFF' ? ns.off : value;

  function send(path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
    cases += 1;
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: ports.webhook,
          path,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on('error', reject);
        },
      );
      // The server may answer 413 and close before it read the whole body.
      req.on('error', (error: NodeJS.ErrnoException) =>
        error.code === 'EPIPE' || error.code === 'ECONNRESET'
          ? resolve({ status: 413, body: JSON.stringify({ error: `connection closed: ${error.code}` }) })
          : reject(error),
      );
      req.end(body);
    });
  }

  /**
   * The answer-shape properties every request must satisfy. Returns the patched object for an
   * allowed answer with a patch, the object itself for one without, or undefined for a denial or
   * a 4xx.
   */
  function checkAnswer(
    path: string,
    sent: unknown,
    answer: Answer,
  ): { patched?: Obj; denied?: string; patch?: JsonPatchOperation[] } {
    const where = `${path} ${answer.status} ${answer.body.slice(0, 400)}`;
    expect(answer.status, where).toBeLessThan(500);
    expect(answer.status, where).toBeGreaterThanOrEqual(200);
    const parsed = JSON.parse(answer.body) as Obj;
    if (answer.status !== 200) {
      expect(answer.status, where).toBeGreaterThanOrEqual(400);
      expect(typeof parsed.error === 'string' && parsed.error.length > 0, where).toBe(true);
      count(`http ${answer.status}`);
      return {};
    }
    const request = own(sent, 'request');
    expect(parsed.apiVersion, where).toBe('admission.k8s.io/v1');
    expect(parsed.kind, where).toBe('AdmissionReview');
    const response = parsed.response as Obj;
    expect(typeof own(request, 'uid') === 'string' && own(request, 'uid') !== '', where).toBe(true);
    expect(response.uid, where).toBe(own(request, 'uid'));
    if (response.allowed === false) {
      const status = response.status as { code?: number; reason?: string; message?: string } | undefined;
      expect(status?.message?.length ?? 0, where).toBeGreaterThan(0);
      expect(status?.reason, where).not.toBe('InternalError');
      expect(status?.code, where).toBeLessThan(500);
      count('denied');
      return { denied: status?.message ?? '' };
    }
    expect(response.allowed, where).toBe(true);
    const object = (own(request, 'object') ?? {}) as Obj;
    if (response.patch === undefined) {
      expect(response.patchType, where).toBeUndefined();
      count('allowed unchanged');
      return { patched: object, patch: [] };
    }
    expect(response.patchType, where).toBe('JSONPatch');
    expect(typeof response.patch, where).toBe('string');
    const decoded = Buffer.from(response.patch as string, 'base64');
    expect(decoded.toString('base64'), `${where}: not canonical base64`).toBe(response.patch);
    const patch = JSON.parse(decoded.toString('utf8')) as JsonPatchOperation[];
    expect(Array.isArray(patch) && patch.length > 0, where).toBe(true);
    const removes = patch.filter((op) => op.op !== 'add');
    const labelPath = '/metadata/labels/entra-access.io~1workload-identity';
    expect(
      removes.every((op) => path === PATHS.Namespace && op.op === 'remove' && op.path === labelPath),
      `${where}: ${JSON.stringify(removes)}`,
    ).toBe(true);
    let patched: Obj;
    try {
      patched = applyPatch(object, patch);
    } catch (error) {
      throw new Error(`${where}: patch ${JSON.stringify(patch)} does not apply: ${(error as Error).message}`);
    }
    count('allowed patched');
    return { patched, patch };
  }

  /** The first answer to a well-formed review, and the reinvocation with the patched object. */
  async function admitTwice(
    kind: keyof typeof PATHS,
    namespace: string | undefined,
    object: Obj,
    uid: string,
    operation = 'CREATE',
    dryRun = false,
  ): Promise<{ first: ReturnType<typeof checkAnswer>; second?: ReturnType<typeof checkAnswer> }> {
    const path = PATHS[kind];
    const review = arb.wellFormedReview(uid, kind, namespace, object, operation, dryRun);
    const first = checkAnswer(path, review, await send(path, JSON.stringify(review)));
    if (!first.patch?.length || !first.patched) return { first };
    const again = arb.wellFormedReview(`${uid}-again`, kind, namespace, first.patched, operation, dryRun);
    const second = checkAnswer(path, again, await send(path, JSON.stringify(again)));
    expect(second.patch, `reinvocation of ${JSON.stringify(first.patched)} patched again`).toEqual([]);
    return { first, second };
  }

  const run = async <T>(property: fc.IAsyncPropertyWithHooks<T> | fc.IAsyncProperty<T>, numRuns: number) => {
    const details = await fc.check(property, { seed: arb.FUZZ_SEED, numRuns, endOnFailure: true });
    if (details.failed) {
      throw new Error(
        `fuzz property failed (FUZZ_SEED=${arb.FUZZ_SEED}, reproduce with FUZZ_SEED=${arb.FUZZ_SEED}; path ${details.counterexamplePath}) after ${details.numRuns} runs\n` +
          `counterexample: ${JSON.stringify(details.counterexample)?.slice(0, 3000)}\n` +
          `${(details.errorInstance as Error | undefined)?.message ?? ''}`,
      );
    }
  };

  beforeAll(async () => {
    const info = harness!;
    const kubeConfig = adminKubeConfig(info);
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    const annotate = (annotations: Obj) => annotations as Record<string, string>;
    await core.createNamespace({
      body: {
        metadata: {
          name: ns.on,
          annotations: annotate({
            [OPT_IN]: 'enabled',
            'entra-access.io/client-id': NS_CLIENT_ID,
            'entra-access.io/extra-pod-labels': 'team=ns,env=prod,bad key=1',
          }),
        },
      },
    });
    await core.createNamespace({
      body: { metadata: { name: ns.nodefault, annotations: { [OPT_IN]: 'enabled' } } },
    });
    await core.createNamespace({ body: { metadata: { name: ns.off } } });
    const sa = (namespace: string, name: string, annotations: Record<string, string> = {}) =>
      core.createNamespacedServiceAccount({ namespace, body: { metadata: { name, annotations } } });
    await sa(ns.on, 'default');
    await sa(ns.on, 'sa-plain');
    await sa(ns.on, 'sa-client', { [CLIENT_ID]: SA_CLIENT_ID, [TENANT_ID]: 'sa-tenant' });
    await sa(ns.on, 'sa-exp', { [TOKEN_EXPIRATION]: '7200' });
    await sa(ns.on, 'sa-bad-exp', { [TOKEN_EXPIRATION]: 'an hour' });
    await sa(ns.nodefault, 'sa-client', { [CLIENT_ID]: SA_CLIENT_ID });
    await sa(ns.nodefault, 'sa-plain');

    dir = makeTempDir('fuzz-admission');
    const certDir = join(dir, 'certs');
    await mkdir(certDir, { recursive: true });
    const authority = await createCertificateAuthority('fuzz CA');
    ca = authority.certPem;
    const leaf = await issueCertificate(authority, {
      commonName: 'entra-access',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
    });
    await writeFile(join(certDir, 'tls.key'), leaf.keyPem);
    await writeFile(join(certDir, 'tls.crt'), leaf.certPem);
    ports.webhook = await freePort();
    ports.metrics = await freePort();
    ports.health = await freePort();
    proc = await startProcess({
      name: 'entra-access-fuzz',
      command: process.execPath,
      args: [
        MAIN,
        'run',
        '--webhook',
        '--bind-address=127.0.0.1',
        `--cert-dir=${certDir}`,
        '--injection-mode=inject',
        `--tenant-id=${TENANT}`,
        `--authority-host=${AUTHORITY}`,
        `--namespace=${OWN_NAMESPACE}`,
        '--extra-pod-labels=global=yes,team=global',
        `--webhook-max-request-bytes=${MAX_REQUEST_BYTES}`,
        '--log-level=warn',
      ],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        KUBECONFIG: info.kubernetes.kubeconfigPath,
        ENTRA_ACCESS_WEBHOOK_PORT: String(ports.webhook),
        ENTRA_ACCESS_METRICS_PORT: String(ports.metrics),
        ENTRA_ACCESS_HEALTH_PORT: String(ports.health),
      },
      logDir: dir,
      // Logs at warn (the admissions would log thousands of lines): ready is /readyz below.
    });
    pid = proc.child.pid;
    const ready = await pollUntil(
      () =>
        fetch(`http://127.0.0.1:${ports.health}/readyz`).then(
          (r) => r.status,
          () => 0,
        ),
      (status) => status === 200,
      30_000,
    );
    expect(ready, proc.tail()).toBe(200);
    agent = new Agent({ keepAlive: true, maxSockets: 4, ca });
  });

  afterAll(async () => {
    agent?.destroy();
    await proc?.stop();
    const info = harness!;
    const core = adminKubeConfig(info).makeApiClient(k8s.CoreV1Api);
    for (const name of Object.values(ns)) await core.deleteNamespace({ name }).catch(() => {});
    if (dir) removeTempDir(dir);
    console.log(
      `fuzz-admission: ${cases} requests sent (FUZZ_SEED=${arb.FUZZ_SEED}); answers: ${JSON.stringify(outcomes)}`,
    );
  });

  it('answers random and malformed AdmissionReviews on every endpoint with a 4xx or a valid answer', async () => {
    const objects = fc.oneof(arb.pod, arb.serviceAccount, arb.namespace, arb.anyJson);
    await run(
      fc.asyncProperty(
        fc.constantFrom(...Object.values(PATHS)),
        arb.review(objects, ['Pod', 'ServiceAccount', 'Namespace']),
        async (path, body) => {
          const request = own(body, 'request');
          if (isObj(request) && Object.hasOwn(request, 'namespace'))
            request.namespace = resolveNamespace(request.namespace);
          checkAnswer(path, body, await send(path, JSON.stringify(body)));
        },
      ),
      3000,
    );
  });

  it('patches valid pods of random shape by the policy, and a reinvocation patches nothing', async () => {
    const namespaceChoice = fc.constantFrom('on', 'on', 'on', 'nodefault', 'off', 'own', 'absent');
    await run(
      fc.asyncProperty(
        arb.pod,
        namespaceChoice,
        fc.uuid(),
        fc.constantFrom('CREATE', 'CREATE', 'CREATE', 'UPDATE'),
        fc.boolean(),
        async (pod, where, uid, operation, dryRun) => {
          const namespace =
            where === 'own'
              ? OWN_NAMESPACE
              : where === 'absent'
                ? uniqueName('fz-absent')
                : ns[where as keyof typeof ns];
          const { first } = await admitTwice('Pod', namespace, pod, uid, operation, dryRun);
          checkPodPolicy(pod, where, operation, first);
        },
      ),
      2500,
    );
  });

  function checkPodPolicy(
    pod: Obj,
    where: string,
    operation: string,
    first: ReturnType<typeof checkAnswer>,
  ): void {
    const show = JSON.stringify(pod);
    const spec = (pod.spec ?? {}) as Obj;
    const saName = strOrUndef(spec.serviceAccountName) || strOrUndef(spec.serviceAccount) || 'default';
    const labels = (at(pod, 'metadata', 'labels') ?? {}) as Obj;
    const useLabel = own(labels, USE);
    const enabled =
      operation === 'CREATE' &&
      (where === 'on' || (where === 'nodefault' && saName === 'sa-client')) &&
      (useLabel === undefined || useLabel === 'true');
    if (!enabled) {
      expect(first.denied, show).toBeUndefined();
      expect(first.patch, show).toEqual([]);
      return;
    }
    const podExpiration = strOrUndef(at(pod, 'metadata', 'annotations', TOKEN_EXPIRATION));
    const saExpiration = where === 'on' ? { 'sa-exp': '7200', 'sa-bad-exp': 'an hour' }[saName] : undefined;
    const raw = podExpiration ?? saExpiration;
    const valid =
      raw === undefined ||
      (/^[0-9]+$/.test(raw.trim()) && Number(raw.trim()) >= 3600 && Number(raw.trim()) <= 86400);
    if (!valid) {
      expect(first.denied, show).toMatch(/3600 to 86400/);
      return;
    }
    expect(first.denied, show).toBeUndefined();
    const patched = first.patched!;
    // Nothing the pod had is lost or changed.
    expect(lostOrChanged(pod, patched), show).toEqual([]);
    const patchedLabels = at(patched, 'metadata', 'labels') as Obj;
    expect(patchedLabels[USE], show).toBe('true');
    const wanted: Record<string, string> =
      where === 'on' ? { team: 'ns', env: 'prod', global: 'yes' } : { global: 'yes', team: 'global' };
    for (const [key, value] of Object.entries(wanted)) {
      expect(patchedLabels[key], `${key} on ${show}`).toBe(Object.hasOwn(labels, key) ? labels[key] : value);
    }
    // Injection: every init/app container not skipped has the env and the token mount.
    const skipped = new Set(
      (strOrUndef(at(pod, 'metadata', 'annotations', SKIP)) ?? '')
        .split(';')
        .flatMap((n) => nonBlank(n) ?? []),
    );
    let injected = false;
    for (const list of ['initContainers', 'containers']) {
      const before = (own(spec, list) ?? []) as Obj[];
      const after = (at(patched, 'spec', list) ?? []) as Obj[];
      before.forEach((container, i) => {
        const now = after[i]!;
        if (skipped.has(container.name as string)) {
          expect(now, `skipped ${String(container.name)} in ${show}`).toEqual(container);
          return;
        }
        injected = true;
        const envNames = ((now.env ?? []) as Obj[]).map((e) => e.name);
        for (const name of ENV_NAMES) expect(envNames, `${name} in ${list}[${i}] of ${show}`).toContain(name);
        // Never a second entry for a name the container already set.
        for (const name of ENV_NAMES) {
          const had = ((container.env ?? []) as Obj[]).filter((e) => e.name === name).length;
          expect(envNames.filter((n) => n === name).length, show).toBe(Math.max(had, 1));
        }
        const mounts = (now.volumeMounts ?? []) as Obj[];
        const pathTaken = ((container.volumeMounts ?? []) as Obj[]).some(
          (m) => m.mountPath === TOKEN_MOUNT && m.name !== TOKEN_VOLUME,
        );
        if (!pathTaken)
          expect(
            mounts.some((m) => m.name === TOKEN_VOLUME),
            show,
          ).toBe(true);
      });
    }
    expect(at(patched, 'spec', 'ephemeralContainers'), show).toEqual(own(spec, 'ephemeralContainers'));
    const volumes = (at(patched, 'spec', 'volumes') ?? []) as Obj[];
    if (injected) {
      const token = volumes.filter((v) => v.name === TOKEN_VOLUME);
      const had = ((own(spec, 'volumes') ?? []) as Obj[]).filter((v) => v.name === TOKEN_VOLUME).length;
      expect(token.length, show).toBe(Math.max(had, 1));
      const hadVolume = had > 0;
      if (!hadVolume) {
        const expected = Number((raw ?? '3600').trim());
        expect(token[0], show).toMatchObject({
          projected: {
            sources: [
              {
                serviceAccountToken: {
                  audience: 'api://AzureADTokenExchange',
                  expirationSeconds: expected,
                  path: 'azure-identity-token',
                },
              },
            ],
          },
        });
      }
      // Every env var added carries the identity of the pod's service account.
      const expected: Record<string, string> = {
        AZURE_CLIENT_ID: saName === 'sa-client' ? SA_CLIENT_ID : NS_CLIENT_ID,
        AZURE_TENANT_ID: saName === 'sa-client' && where === 'on' ? 'sa-tenant' : TENANT,
        AZURE_FEDERATED_TOKEN_FILE: `${TOKEN_MOUNT}/${TOKEN_VOLUME}`,
        AZURE_AUTHORITY_HOST: AUTHORITY,
      };
      const added = (first.patch ?? []).flatMap((op) =>
        op.op === 'add' && /\/env(\/-)?$/.test(op.path) ? [op.value].flat() : [],
      ) as Obj[];
      for (const env of added) expect(env.value, show).toBe(expected[env.name as string]);
    } else {
      expect(volumes.filter((v) => v.name === TOKEN_VOLUME).length, show).toBe(
        ((own(spec, 'volumes') ?? []) as Obj[]).filter((v) => v.name === TOKEN_VOLUME).length,
      );
    }
  }

  it('annotates valid ServiceAccounts of random shape, never overwriting a hand-set client-id', async () => {
    await run(
      fc.asyncProperty(
        arb.serviceAccount,
        fc.constantFrom('on', 'on', 'nodefault', 'off', 'own'),
        fc.uuid(),
        fc.constantFrom('CREATE', 'UPDATE', 'DELETE'),
        async (sa, where, uid, operation) => {
          const namespace = where === 'own' ? OWN_NAMESPACE : ns[where as keyof typeof ns];
          const { first } = await admitTwice('ServiceAccount', namespace, sa, uid, operation);
          const show = JSON.stringify(sa);
          expect(first.denied, show).toBeUndefined();
          if (where !== 'on' || operation === 'DELETE') {
            expect(first.patch, show).toEqual([]);
            return;
          }
          const existing = nonBlank(at(sa, 'metadata', 'annotations', CLIENT_ID));
          const existingTenant = nonBlank(at(sa, 'metadata', 'annotations', TENANT_ID));
          const annotations = (at(first.patched, 'metadata', 'annotations') ?? {}) as Obj;
          if (existing !== undefined && existing !== NS_CLIENT_ID) {
            expect(first.patch, show).toEqual([]);
            return;
          }
          expect(annotations[CLIENT_ID], show).toBe(existing ?? NS_CLIENT_ID);
          expect(annotations[TENANT_ID], show).toBe(
            existingTenant !== undefined ? at(sa, 'metadata', 'annotations', TENANT_ID) : TENANT,
          );
          // Only a blank client-id/tenant-id may be replaced; everything else survives.
          const blankAllowed = (path: string) =>
            path === '/metadata/annotations/azure.workload.identity~1client-id' ||
            path === '/metadata/annotations/azure.workload.identity~1tenant-id';
          expect(lostOrChanged(sa, first.patched, blankAllowed), show).toEqual([]);
        },
      ),
      1000,
    );
  });

  it('mirrors the opt-in annotation of Namespaces of random shape into the label, and nothing else', async () => {
    await run(
      fc.asyncProperty(
        arb.namespace,
        fc.uuid(),
        fc.constantFrom('CREATE', 'UPDATE', 'DELETE'),
        fc.boolean(),
        async (namespace, uid, operation, dryRun) => {
          const { first } = await admitTwice('Namespace', undefined, namespace, uid, operation, dryRun);
          const show = JSON.stringify(namespace);
          expect(first.denied, show).toBeUndefined();
          if (operation === 'DELETE') {
            expect(first.patch, show).toEqual([]);
            return;
          }
          const optedIn = at(namespace, 'metadata', 'annotations', OPT_IN) === 'enabled';
          const label = at(first.patched, 'metadata', 'labels', OPT_IN);
          expect(label, show).toBe(optedIn ? 'enabled' : undefined);
          const labelPath = '/metadata/labels/entra-access.io~1workload-identity';
          expect(
            lostOrChanged(namespace, first.patched, (p) => p === labelPath),
            show,
          ).toEqual([]);
        },
      ),
      1000,
    );
  });

  it('refuses invalid bytes, bad encodings, deep nesting and oversize bodies with 4xx', async () => {
    const junkBody = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.string({ unit: 'binary', maxLength: 100 }).map((s) => Buffer.from(s)),
      fc.json().map((j) => Buffer.from(j.slice(0, Math.max(0, j.length - 1)))), // truncated JSON
      fc
        .constantFrom(
          '',
          ' ',
          'null',
          'true',
          '"AdmissionReview"',
          '[]',
          '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":',
          '{"a":1}{"b":2}',
          '\ufeff{}',
          '{"__proto__":{"polluted":true},"apiVersion":"admission.k8s.io/v1"}',
          '{"constructor":{"prototype":{"polluted":true}}}',
          'NaN',
          '{"a":1e999999}',
          '{"a":"\\ud800"}',
          '{"a":"\u0000"}',
        )
        .map((s) => Buffer.from(s)),
      fc.constantFrom(
        Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
        Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
      ),
    );
    const headers = fc.oneof(
      fc.constant({}),
      fc.constantFrom<Record<string, string>>(
        { 'content-type': 'text/plain' },
        { 'content-type': 'application/x-www-form-urlencoded' },
        { 'content-type': 'application/json; charset=utf-16' },
        { 'content-type': 'application/json; charset=latin1' },
        { 'content-type': '' },
        { 'content-encoding': 'br' },
        { 'content-encoding': 'compress' },
        { 'content-encoding': 'gzip' },
      ),
    );
    await run(
      fc.asyncProperty(fc.constantFrom(...Object.values(PATHS)), junkBody, headers, async (path, body, h) => {
        checkAnswer(path, {}, await send(path, body, h));
      }),
      1000,
    );

    // Fixed cases around the limits.
    const wellFormed = (pad: string) =>
      JSON.stringify(
        arb.wellFormedReview('big', 'Pod', ns.on, {
          metadata: { name: 'big', annotations: { pad } },
          spec: { containers: [{ name: 'app', image: 'x' }] },
        }),
      );
    const justUnder = wellFormed('x'.repeat(MAX_REQUEST_BYTES - wellFormed('').length));
    expect(Buffer.byteLength(justUnder)).toBe(MAX_REQUEST_BYTES);
    const under = checkAnswer(PATHS.Pod, JSON.parse(justUnder), await send(PATHS.Pod, justUnder));
    expect(under.patched).toBeDefined();
    const over = await send(PATHS.Pod, `${justUnder} `);
    expect(over.status, over.body).toBe(413);
    expect(JSON.parse(over.body).error).toMatch(/too large/);
    const muchOver = await send(PATHS.Pod, 'x'.repeat(4 * MAX_REQUEST_BYTES));
    expect(muchOver.status).toBe(413);
    // A gzip bomb: small on the wire, over the limit once inflated.
    const bomb = gzipSync(Buffer.from(`{"pad":"${'0'.repeat(8 * MAX_REQUEST_BYTES)}"}`));
    expect(bomb.length).toBeLessThan(MAX_REQUEST_BYTES / 8);
    const inflated = await send(PATHS.Pod, bomb, { 'content-encoding': 'gzip' });
    expect(inflated.status, inflated.body).toBe(413);
    // A gzip body within the limit is read like a plain one.
    const gz = await send(PATHS.Pod, gzipSync(Buffer.from(justUnder)), { 'content-encoding': 'gzip' });
    checkAnswer(PATHS.Pod, JSON.parse(justUnder), gz);
    // A chunked body with no declared length over the limit.
    const chunked = await send(PATHS.Namespace, `[${'1,'.repeat(MAX_REQUEST_BYTES)}1]`, {
      'transfer-encoding': 'chunked',
    });
    expect(chunked.status).toBe(413);
    // Deep nesting: as an unknown field of a valid pod (must survive the patch), and as junk.
    for (const depth of [1_000, 20_000, MAX_REQUEST_BYTES / 2 - 100]) {
      const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const body = wellFormed('deep').replace('"deep"', `"deep"},"xDeep":{"v":${deep}`);
      const answer = await send(PATHS.Pod, body);
      expect(answer.status, `${depth}: ${answer.body.slice(0, 200)}`).toBeLessThan(500);
      if (answer.status === 200) {
        // Too deep to clone and compare here; the patch must only add the label and the injection.
        const response = JSON.parse(answer.body).response as Obj;
        expect(response).toMatchObject({ uid: 'big', allowed: true, patchType: 'JSONPatch' });
        const patch = JSON.parse(
          Buffer.from(response.patch as string, 'base64').toString(),
        ) as JsonPatchOperation[];
        expect(patch.every((op) => op.op === 'add' && !op.path.includes('xDeep'))).toBe(true);
      } else {
        expect(answer.status).toBe(413);
      }
      const objDeep = `${'{"a":'.repeat(Math.min(depth, MAX_REQUEST_BYTES / 6))}1${'}'.repeat(Math.min(depth, MAX_REQUEST_BYTES / 6))}`;
      const junk = await send(PATHS.Namespace, objDeep);
      expect(junk.status, junk.body.slice(0, 200)).toBeLessThan(500);
    }
    // Huge but legal: thousands of labels and containers, all kept.
    const manyLabels = Object.fromEntries(
      Array.from({ length: 3000 }, (_, i) => [`l${i}.example.com/k~${i}`, `v${i}`]),
    );
    const manyContainers = Array.from({ length: 300 }, (_, i) => ({
      name: `c${i}`,
      image: 'x',
      env: [{ name: 'A', value: 'b' }],
    }));
    const hugePod = { metadata: { name: 'huge', labels: manyLabels }, spec: { containers: manyContainers } };
    const hugeReview = arb.wellFormedReview('huge', 'Pod', ns.on, hugePod);
    const hugeText = JSON.stringify(hugeReview);
    expect(Buffer.byteLength(hugeText)).toBeLessThan(MAX_REQUEST_BYTES);
    const huge = checkAnswer(PATHS.Pod, hugeReview, await send(PATHS.Pod, hugeText));
    expect(lostOrChanged(hugePod, huge.patched)).toEqual([]);
    expect(((at(huge.patched, 'spec', 'containers') as Obj[])[299]!.env as Obj[]).length).toBe(5);
    // Not POST, or nowhere: 404 with a reason.
    const nowhere = await send('/mutate-v1-secret', '{}');
    expect(nowhere.status).toBe(404);
    expect(JSON.parse(nowhere.body).error).toMatch(/no webhook/);
  });

  it('is still the same healthy process after all of it', async () => {
    expect(proc.child.pid).toBe(pid);
    expect(proc.child.exitCode, proc.tail()).toBeNull();
    expect(proc.child.signalCode).toBeNull();
    const health = await fetch(`http://127.0.0.1:${ports.health}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${ports.health}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
    expect(metrics).not.toMatch(/controller_runtime_webhook_requests_total\{[^}]*code="5\d\d"\}/);
    // The log holds no crash and no handler exception.
    expect(proc.tail(100_000)).not.toMatch(/"msg":"admission failed"|uncaught|unhandled/i);
    expect(cases).toBeGreaterThan(9000);
    // The generators reach every kind of answer, not only the decoder's 4xx.
    for (const kind of ['allowed patched', 'allowed unchanged', 'denied', 'http 400', 'http 415']) {
      expect(outcomes[kind] ?? 0, JSON.stringify(outcomes)).toBeGreaterThan(
        kind === 'allowed patched' ? 800 : 20,
      );
    }
  });
});
