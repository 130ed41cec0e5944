// The pure certificate facts (inspect.ts) and what issue.ts produces: a CA that can sign, serving
// certificates with exactly the asked names, for server auth, never outliving their CA.
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  certificateMatches,
  expiresAt,
  isCertificateAuthority,
  isIssuedBy,
  keyMatches,
  needsRenewal,
  splitPemCertificates,
} from '../../../src/webhook/certificates/inspect.ts';
import {
  BACKDATE_MS,
  createCertificateAuthority,
  issueServingCertificate,
  type PemPair,
} from '../../../src/webhook/certificates/issue.ts';
import { serviceCommonName, serviceDnsNames } from '../../../src/webhook/certificates/names.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-06-01T12:00:00Z');
const NAMES = serviceDnsNames('entra-access-webhook', 'entra-access-system');

let ca: PemPair;
let otherCa: PemPair;
let serving: PemPair;

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'test-ca', now: NOW, validityMs: 365 * DAY });
  otherCa = await createCertificateAuthority({ commonName: 'test-ca', now: NOW, validityMs: 365 * DAY });
  serving = await issueServingCertificate({
    ca,
    commonName: serviceCommonName('entra-access-webhook', 'entra-access-system'),
    dnsNames: NAMES,
    ipAddresses: [],
    now: NOW,
    validityMs: 90 * DAY,
  });
});

describe('serviceDnsNames', () => {
  it('lists the four names a Service answers to', () => {
    expect(serviceDnsNames('svc', 'ns')).toEqual(['svc', 'svc.ns', 'svc.ns.svc', 'svc.ns.svc.cluster.local']);
    expect(serviceCommonName('svc', 'ns')).toBe('svc.ns.svc');
  });
});

describe('issued certificates', () => {
  it('makes a CA that may sign, valid from an hour back for the asked lifetime', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(isCertificateAuthority(ca.certPem)).toBe(true);
    expect(cert.validFromDate.getTime()).toBe(Math.floor((NOW.getTime() - BACKDATE_MS) / 1000) * 1000);
    expect(cert.validToDate.getTime()).toBe(NOW.getTime() + 365 * DAY);
    expect(keyMatches(ca.certPem, ca.keyPem)).toBe(true);
  });

  it('makes a serving certificate for the Service names, for server auth, signed by the CA', () => {
    const cert = new X509Certificate(serving.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe('CN=entra-access-webhook.entra-access-system.svc');
    expect(cert.subjectAltName).toBe(NAMES.map((name) => `DNS:${name}`).join(', '));
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.validToDate.getTime()).toBe(NOW.getTime() + 90 * DAY);
    expect(isIssuedBy(serving.certPem, ca.certPem)).toBe(true);
    expect(keyMatches(serving.certPem, serving.keyPem)).toBe(true);
    expect(isCertificateAuthority(serving.certPem)).toBe(false);
  });

  it('never lets a serving certificate outlive its CA', async () => {
    const shortCa = await createCertificateAuthority({ commonName: 'short', now: NOW, validityMs: 10 * DAY });
    const capped = await issueServingCertificate({
      ca: shortCa,
      commonName: 'x',
      dnsNames: ['x'],
      ipAddresses: ['127.0.0.1'],
      now: NOW,
      validityMs: 90 * DAY,
    });
    expect(expiresAt(capped.certPem)?.getTime()).toBe(NOW.getTime() + 10 * DAY);
  });

  it('gives every certificate its own positive serial number', async () => {
    const again = await issueServingCertificate({
      ca,
      commonName: 'x',
      dnsNames: NAMES,
      ipAddresses: [],
      now: NOW,
      validityMs: DAY,
    });
    const serials = [serving, again, ca, otherCa].map(
      (pair) => new X509Certificate(pair.certPem).serialNumber,
    );
    expect(new Set(serials).size).toBe(4);
    for (const serial of serials) expect(Number.parseInt(serial.slice(0, 1), 16)).toBeLessThan(8);
  });
});

describe('needsRenewal', () => {
  it.each([
    ['60 days left, renew 30 days before', NOW.getTime() + 30 * DAY, false],
    ['exactly 30 days left', NOW.getTime() + 60 * DAY, true],
    ['29 days left', NOW.getTime() + 61 * DAY, true],
    ['expired', NOW.getTime() + 91 * DAY, true],
  ])('%s', (_, at, expected) => {
    expect(needsRenewal(serving.certPem, new Date(at), 30 * DAY)).toBe(expected);
  });

  it('renews what it cannot read', () => {
    expect(needsRenewal(undefined, NOW, 30 * DAY)).toBe(true);
    expect(needsRenewal('not a certificate', NOW, 30 * DAY)).toBe(true);
  });
});

describe('certificateMatches', () => {
  it('is true for exactly the names the certificate carries, in any order', () => {
    expect(certificateMatches(serving.certPem, NAMES)).toBe(true);
    expect(certificateMatches(serving.certPem, [...NAMES].reverse())).toBe(true);
  });

  it('is false when a name is missing, extra or different', () => {
    expect(certificateMatches(serving.certPem, NAMES.slice(1))).toBe(false);
    expect(certificateMatches(serving.certPem, [...NAMES, 'other.svc'])).toBe(false);
    expect(certificateMatches(serving.certPem, serviceDnsNames('renamed', 'entra-access-system'))).toBe(
      false,
    );
    expect(certificateMatches(serving.certPem, NAMES, ['127.0.0.1'])).toBe(false);
    expect(certificateMatches(undefined, NAMES)).toBe(false);
  });

  it('compares IP addresses as IP SANs', async () => {
    const withIp = await issueServingCertificate({
      ca,
      commonName: 'x',
      dnsNames: ['svc'],
      ipAddresses: ['127.0.0.1'],
      now: NOW,
      validityMs: DAY,
    });
    expect(certificateMatches(withIp.certPem, ['svc'], ['127.0.0.1'])).toBe(true);
    expect(certificateMatches(withIp.certPem, ['svc'], ['127.0.0.2'])).toBe(false);
    expect(certificateMatches(withIp.certPem, ['svc', '127.0.0.1'])).toBe(false);
  });
});

describe('keys, issuers and bundles', () => {
  it('tells a matching key from another', () => {
    expect(keyMatches(serving.certPem, ca.keyPem)).toBe(false);
    expect(keyMatches(serving.certPem, 'garbage')).toBe(false);
    expect(keyMatches(serving.certPem, undefined)).toBe(false);
  });

  it('tells the issuing CA from another CA with the same name', () => {
    expect(isIssuedBy(serving.certPem, otherCa.certPem)).toBe(false);
    expect(isIssuedBy(serving.certPem, undefined)).toBe(false);
  });

  it('splits a PEM bundle into its certificates, ignoring anything else', () => {
    const bundle = `${ca.certPem}\n# comment\n${otherCa.certPem}${serving.keyPem}`;
    const parts = splitPemCertificates(bundle);
    expect(parts).toHaveLength(2);
    expect(new X509Certificate(parts[0]!).fingerprint256).toBe(
      new X509Certificate(ca.certPem).fingerprint256,
    );
    expect(new X509Certificate(parts[1]!).fingerprint256).toBe(
      new X509Certificate(otherCa.certPem).fingerprint256,
    );
    expect(splitPemCertificates(undefined)).toEqual([]);
  });
});
