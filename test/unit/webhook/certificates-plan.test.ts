// The pure decisions of self-managed certificates: what to renew (planCertificates), which CAs
// the bundle trusts across a rotation (nextBundle), the Secret's encoding, and the caBundle patch
// of the webhook configuration.
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  bundleGeneration,
  CA_BUNDLE_GENERATION_ANNOTATION,
  caBundlePatch,
  trustedBundles,
} from '../../../src/webhook/certificates/ca-bundle.ts';
import { splitPemCertificates } from '../../../src/webhook/certificates/inspect.ts';
import {
  createCertificateAuthority,
  issueServingCertificate,
  type PemPair,
} from '../../../src/webhook/certificates/issue.ts';
import {
  type CertificateSettings,
  nextBundle,
  planCertificates,
  RELOAD_GRACE_MS,
  type StoredCertificates,
} from '../../../src/webhook/certificates/plan.ts';
import {
  decodeCertificateSecret,
  encodeCertificateSecret,
  GENERATION_ANNOTATION,
  RETAIN_UNTIL_ANNOTATION,
} from '../../../src/webhook/certificates/secret.ts';

const DAY = 86_400_000;
const T0 = new Date('2026-06-01T12:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY);
const SETTINGS: CertificateSettings = {
  dnsNames: ['svc', 'svc.ns.svc'],
  ipAddresses: [],
  renewBeforeMs: 30 * DAY,
};

let ca: PemPair;
let oldCa: PemPair;
let serving: PemPair;
let servingFromOldCa: PemPair;

const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
const bundleOf = (pem: string) => splitPemCertificates(pem).map(fp);

function issue(authority: PemPair, now: Date, validityDays: number, dnsNames = SETTINGS.dnsNames) {
  return issueServingCertificate({
    ca: authority,
    commonName: 'svc.ns.svc',
    dnsNames,
    ipAddresses: [],
    now,
    validityMs: validityDays * DAY,
  });
}

function stored(
  overrides: Partial<StoredCertificates['contents']> = {},
  extra: Partial<StoredCertificates> = {},
): StoredCertificates {
  return {
    contents: {
      tlsCrt: serving.certPem,
      tlsKey: serving.keyPem,
      caCrt: ca.certPem,
      caKey: ca.keyPem,
      ...overrides,
    },
    generation: 3,
    ...extra,
  };
}

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'ca-new', now: T0, validityMs: 365 * DAY });
  oldCa = await createCertificateAuthority({ commonName: 'ca-old', now: at(-300), validityMs: 365 * DAY });
  serving = await issue(ca, T0, 90);
  servingFromOldCa = await issue(oldCa, at(-10), 90);
});

describe('planCertificates', () => {
  it('keeps a fresh, matching pair from a healthy CA', () => {
    expect(planCertificates(stored(), at(1), SETTINGS)).toEqual({ action: 'keep' });
  });

  it.each([
    ['no Secret', () => undefined, 1, 'rotate-ca', /no certificate Secret/],
    ['no CA key', () => stored({ caKey: undefined }), 1, 'rotate-ca', /no usable CA/],
    ['a CA key of another CA', () => stored({ caKey: oldCa.keyPem }), 1, 'rotate-ca', /no usable CA/],
    [
      'a leaf where the CA belongs',
      () => stored({ caCrt: serving.certPem, caKey: serving.keyPem }),
      1,
      'rotate-ca',
      /no usable CA/,
    ],
    ['a CA due for renewal', () => stored(), 336, 'rotate-ca', /the CA expires at 2027-06-01/],
    ['no serving key', () => stored({ tlsKey: undefined }), 1, 'issue-serving', /no usable serving/],
    [
      'a mismatched serving key',
      () => stored({ tlsKey: ca.keyPem }),
      1,
      'issue-serving',
      /no usable serving/,
    ],
    [
      'a serving certificate from another CA',
      () => stored({ tlsCrt: servingFromOldCa.certPem, tlsKey: servingFromOldCa.keyPem }),
      1,
      'issue-serving',
      /not issued by the current CA/,
    ],
    ['a serving certificate due for renewal', () => stored(), 60, 'issue-serving', /expires at 2026-08-30/],
    ['an expired serving certificate', () => stored(), 100, 'issue-serving', /expires at/],
  ] as Array<[string, () => StoredCertificates | undefined, number, string, RegExp]>)(
    'renews on %s',
    (_, make, day, action, reason) => {
      const plan = planCertificates(make(), at(day), SETTINGS);
      expect(plan.action).toBe(action);
      expect(plan.action !== 'keep' && plan.reason).toMatch(reason);
    },
  );

  it('reissues the serving certificate when the Service names change', () => {
    const plan = planCertificates(stored(), at(1), { ...SETTINGS, dnsNames: ['renamed', 'renamed.ns.svc'] });
    expect(plan).toMatchObject({
      action: 'issue-serving',
      reason: expect.stringMatching(/renamed, renamed.ns.svc/),
    });
  });

  it('renews on request, a CA rotation included', () => {
    expect(planCertificates(stored(), at(1), SETTINGS, 'serving')).toMatchObject({ action: 'issue-serving' });
    expect(planCertificates(stored(), at(1), SETTINGS, 'ca')).toMatchObject({ action: 'rotate-ca' });
  });

  it('keeps previous CAs until their time is over, then prunes them', () => {
    const rotating = stored({ caCrt: ca.certPem + oldCa.certPem }, { retainUntil: at(10) });
    expect(planCertificates(rotating, at(9), SETTINGS)).toEqual({ action: 'keep' });
    expect(planCertificates(rotating, at(10), SETTINGS)).toMatchObject({ action: 'prune-bundle' });
    const noDate = stored({ caCrt: ca.certPem + oldCa.certPem });
    expect(planCertificates(noDate, at(1), SETTINGS)).toMatchObject({ action: 'prune-bundle' });
  });
});

describe('nextBundle', () => {
  /**
   * nextBundle with these defaults but for `changes`: a rotation to `ca` at T0, nothing stored, and
   * adopted CAs kept 30 days.
   */
  const next = (changes: Partial<Parameters<typeof nextBundle>[0]>) =>
    nextBundle({
      action: 'rotate-ca',
      ca: ca.certPem,
      stored: undefined,
      adoptedRetentionMs: 30 * DAY,
      now: T0,
      ...changes,
    });

  it('puts a new CA first and keeps the old one until the old serving certificate expires', async () => {
    const previous = stored({ tlsCrt: servingFromOldCa.certPem, caCrt: oldCa.certPem, caKey: oldCa.keyPem });
    const bundle = next({ stored: previous });
    expect(bundleOf(bundle.caCrt)).toEqual([fp(ca.certPem), fp(oldCa.certPem)]);
    expect(bundle.retainUntil).toEqual(new X509Certificate(servingFromOldCa.certPem).validToDate);
  });

  it('keeps the old CA at least RELOAD_GRACE_MS, so every replica can reload first', async () => {
    const almostExpired = await issue(oldCa, at(-90 + 0.0001), 90);
    const previous = stored({ tlsCrt: almostExpired.certPem, caCrt: oldCa.certPem, caKey: oldCa.keyPem });
    const bundle = next({ stored: previous });
    expect(bundle.retainUntil).toEqual(new Date(T0.getTime() + RELOAD_GRACE_MS));
  });

  it('carries CAs still retained from an earlier rotation, and drops expired ones', async () => {
    const oldest = await createCertificateAuthority({
      commonName: 'oldest',
      now: at(-400),
      validityMs: 401 * DAY,
    });
    const expired = await createCertificateAuthority({
      commonName: 'expired',
      now: at(-400),
      validityMs: 399 * DAY,
    });
    const previous = stored(
      {
        tlsCrt: servingFromOldCa.certPem,
        caCrt: oldCa.certPem + oldest.certPem + expired.certPem,
        caKey: oldCa.keyPem,
      },
      { retainUntil: at(5) },
    );
    const bundle = next({ stored: previous });
    expect(bundleOf(bundle.caCrt)).toEqual([fp(ca.certPem), fp(oldCa.certPem), fp(oldest.certPem)]);
  });

  it('leaves older CAs out of a rotation once their retention is over', () => {
    const previous = stored(
      { tlsCrt: servingFromOldCa.certPem, caCrt: oldCa.certPem + serving.certPem, caKey: oldCa.keyPem },
      { retainUntil: at(-1) },
    );
    const bundle = next({ stored: previous });
    expect(bundleOf(bundle.caCrt)).toEqual([fp(ca.certPem), fp(oldCa.certPem)]);
  });

  it('with no Secret, keeps what the configuration trusted for a while (adopted)', () => {
    const bundle = next({ adopted: [oldCa.certPem, ca.certPem] });
    expect(bundleOf(bundle.caCrt)).toEqual([fp(ca.certPem), fp(oldCa.certPem)]);
    expect(bundle.retainUntil).toEqual(at(30));
  });

  it('is the CA alone on a first install', () => {
    const bundle = next({});
    expect(bundleOf(bundle.caCrt)).toEqual([fp(ca.certPem)]);
    expect(bundle.retainUntil).toBeUndefined();
  });

  it('leaves the bundle as it is when only the serving certificate is renewed', () => {
    const rotating = stored({ caCrt: ca.certPem + oldCa.certPem }, { retainUntil: at(10) });
    const bundle = next({ action: 'issue-serving', stored: rotating, now: at(1) });
    expect(bundleOf(bundle.caCrt)).toEqual([fp(ca.certPem), fp(oldCa.certPem)]);
    expect(bundle.retainUntil).toEqual(at(10));
  });

  it('prunes to the current CA', () => {
    const rotating = stored({ caCrt: ca.certPem + oldCa.certPem }, { retainUntil: at(10) });
    const bundle = next({ action: 'prune-bundle', stored: rotating, now: at(11) });
    expect(bundleOf(bundle.caCrt)).toEqual([fp(ca.certPem)]);
    expect(bundle.retainUntil).toBeUndefined();
  });
});

describe('the certificate Secret', () => {
  it('round-trips through a kubernetes.io/tls Secret', () => {
    const contents = {
      tlsCrt: serving.certPem,
      tlsKey: serving.keyPem,
      caCrt: ca.certPem + oldCa.certPem,
      caKey: ca.keyPem,
    };
    const secret = encodeCertificateSecret({
      name: 'wh-tls',
      namespace: 'ns',
      stored: { contents, generation: 7, retainUntil: at(3) },
      resourceVersion: '42',
    });
    expect(secret).toMatchObject({
      type: 'kubernetes.io/tls',
      metadata: {
        name: 'wh-tls',
        namespace: 'ns',
        resourceVersion: '42',
        annotations: { [GENERATION_ANNOTATION]: '7', [RETAIN_UNTIL_ANNOTATION]: at(3).toISOString() },
      },
    });
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(decodeCertificateSecret(secret)).toEqual({ contents, generation: 7, retainUntil: at(3) });
  });

  it('reads a foreign or partial Secret as generation 0 with what it has', () => {
    const decoded = decodeCertificateSecret({
      metadata: { annotations: { [GENERATION_ANNOTATION]: 'x' } },
      data: { 'tls.crt': Buffer.from('crt').toString('base64') },
    });
    expect(decoded).toEqual({ contents: { tlsCrt: 'crt' }, generation: 0 });
  });
});

describe('caBundlePatch', () => {
  const pem = 'PEM BUNDLE\n';
  const b64 = Buffer.from(pem).toString('base64');
  const configuration = (caBundles: Array<string | undefined>, annotations?: Record<string, string>) => ({
    metadata: { resourceVersion: '100', ...(annotations ? { annotations } : {}) },
    webhooks: caBundles.map((caBundle, i) => ({
      name: `w${i}`,
      clientConfig: caBundle === undefined ? {} : { caBundle },
    })),
  });

  it('sets the bundle into every webhook that differs, guarded by resourceVersion and names', () => {
    const patch = caBundlePatch(configuration([undefined, b64, 'b2xk']), pem, 4);
    expect(patch).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '100' },
      { op: 'test', path: '/webhooks/0/name', value: 'w0' },
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: b64 },
      { op: 'test', path: '/webhooks/2/name', value: 'w2' },
      { op: 'add', path: '/webhooks/2/clientConfig/caBundle', value: b64 },
      { op: 'add', path: '/metadata/annotations', value: { [CA_BUNDLE_GENERATION_ANNOTATION]: '4' } },
    ]);
    expect(patch.some((op) => op.op === 'remove')).toBe(false);
  });

  it('adds the generation next to other annotations, escaping the key', () => {
    const patch = caBundlePatch(configuration([b64], { 'meta.helm.sh/release-name': 'ea' }), pem, 5);
    expect(patch).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '100' },
      { op: 'add', path: '/metadata/annotations/entra-access.io~1ca-bundle-generation', value: '5' },
    ]);
  });

  it('is empty when every webhook has the bundle and the generation is recorded', () => {
    expect(
      caBundlePatch(configuration([b64, b64], { [CA_BUNDLE_GENERATION_ANNOTATION]: '5' }), pem, 5),
    ).toEqual([]);
  });

  it('reads the recorded generation and the trusted bundles', () => {
    const view = configuration([b64, b64, undefined], { [CA_BUNDLE_GENERATION_ANNOTATION]: '9' });
    expect(bundleGeneration(view)).toBe(9);
    expect(trustedBundles(view)).toEqual([pem]);
    expect(bundleGeneration(configuration([]))).toBe(0);
  });
});
