// Helpers for the churn tests (issue 12): a seeded random source, the one spec change the fleet
// helpers in scenario.ts lack (a new spec.serviceAccountName), an audit of the FICs each identity
// holds as the emulator sees them (never as the product reports them), and the controller's
// reconcile counter read from an operator's /metrics. Plain functions, free of vitest.
import * as k8s from '@kubernetes/client-node';
import { ACCESS_PLURAL } from '../../src/api/constants.ts';
import type { AzureEmulatorClient, FicView } from './azure-emulator/client.ts';
import type { HarnessInfo } from './harness.ts';
import { API, type FleetAccess, type FleetWorld } from './scenario.ts';

/** A small seeded PRNG (mulberry32), so a failing churn run can be replayed from its seed. */
export class SeededRandom {
  readonly seed: number;
  #state: number;

  constructor(seed: number) {
    this.seed = seed;
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A float in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }
}

/** The seed from `CHURN_SEED` when set, else a fresh one. */
export function churnSeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.CHURN_SEED;
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0) throw new Error(`CHURN_SEED must be an integer >= 0: ${given}`);
    return seed;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

/** A positive number from the environment, or `fallback` when the variable is unset or empty. */
export function envNumber(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a number > 0: ${raw}`);
  return value;
}

/** Changes an access resource's spec.serviceAccountName (a merge patch); returns the new generation. */
export async function patchServiceAccountName(
  custom: k8s.CustomObjectsApi,
  namespace: string,
  name: string,
  serviceAccountName: string,
): Promise<number | undefined> {
  const patched = (await custom.patchNamespacedCustomObject(
    { ...API, plural: ACCESS_PLURAL, namespace, name, body: { spec: { serviceAccountName } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  )) as { metadata?: { generation?: number } };
  return patched.metadata?.generation;
}

/** The FICs an identity holds in the emulator (all issuers), by ARM id. */
export async function emulatorFics(emulator: AzureEmulatorClient, identityId: string): Promise<FicView[]> {
  const identity = (await emulator.listIdentities()).find(
    (i) => i.id.toLowerCase() === identityId.toLowerCase(),
  );
  return identity?.federatedIdentityCredentials ?? [];
}

export const serviceAccountSubject = (namespace: string, serviceAccount: string): string =>
  `system:serviceaccount:${namespace}:${serviceAccount}`;

export interface FicAudit {
  /** FICs of this cluster's issuer that trust no live access's service account: `<identity> <subject>`. */
  orphans: string[];
  /** Subjects of live accesses with no FIC: `<identity> <subject>`. */
  missing: string[];
  /** Subjects trusted by more than one FIC of one identity. */
  duplicates: string[];
  /** FICs of this cluster's issuer over all the world's identities. */
  total: number;
}

/** What the emulator holds for the world's identities against what `live` needs, in figures. */
export async function auditFleetFics(
  info: HarnessInfo,
  emulator: AzureEmulatorClient,
  world: FleetWorld,
  live: readonly FleetAccess[],
): Promise<FicAudit> {
  const audit: FicAudit = { orphans: [], missing: [], duplicates: [], total: 0 };
  const emulated = await emulator.listIdentities();
  for (const identity of world.identities) {
    const label = identity.id.split('/').pop();
    const subjects = (
      emulated.find((i) => i.id.toLowerCase() === identity.id.toLowerCase())?.federatedIdentityCredentials ??
      []
    )
      .filter((f) => f.properties.issuer === info.kubernetes.issuer)
      .map((f) => f.properties.subject);
    audit.total += subjects.length;
    const wanted = new Set(
      live
        .filter((a) => a.identity.id === identity.id)
        .map((a) => serviceAccountSubject(a.namespace, a.serviceAccount)),
    );
    const seen = new Set<string>();
    for (const subject of subjects) {
      if (seen.has(subject)) audit.duplicates.push(`${label} ${subject}`);
      seen.add(subject);
      if (!wanted.has(subject)) audit.orphans.push(`${label} ${subject}`);
    }
    for (const subject of wanted) if (!seen.has(subject)) audit.missing.push(`${label} ${subject}`);
  }
  return audit;
}

/** Samples of a Prometheus text exposition at `metricsUrl`: `name{labels}` -> value. */
export async function scrapeMetrics(metricsUrl: string): Promise<Map<string, number>> {
  const response = await fetch(metricsUrl);
  if (!response.ok) throw new Error(`GET ${metricsUrl}: ${response.status}`);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** The sum of every sample of `name` whose labels include all of `labels` (e.g. 'result="error"'). */
export function sumOf(samples: Map<string, number>, name: string, ...labels: string[]): number {
  let total = 0;
  for (const [key, value] of samples)
    if (key.split('{')[0] === name && labels.every((label) => key.includes(label))) total += value;
  return total;
}
