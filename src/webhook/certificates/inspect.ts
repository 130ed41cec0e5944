// Facts about PEM certificates and keys, read with node:crypto. Pure: no I/O, and every function
// answers "no" (or "renew") for input it cannot parse instead of throwing.
import { createPrivateKey, X509Certificate } from 'node:crypto';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, each as its own PEM block (with a trailing newline). */
export function splitPemCertificates(bundle: string | undefined): string[] {
  return (bundle?.match(PEM_CERTIFICATE) ?? []).map((pem) => `${pem}\n`);
}

export function parseCertificate(pem: string | undefined): X509Certificate | undefined {
  if (!pem) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** When the certificate expires, or undefined if it cannot be parsed. */
export function expiresAt(pem: string | undefined): Date | undefined {
  return parseCertificate(pem)?.validToDate;
}

/** SHA-256 fingerprint, the identity used to compare certificates. */
export function fingerprint(pem: string | undefined): string | undefined {
  return parseCertificate(pem)?.fingerprint256;
}

/**
 * Whether a certificate must be renewed at `now`: it is missing or unreadable, or it has
 * `renewBeforeMs` or less left before it expires (expired ones included).
 */
export function needsRenewal(certPem: string | undefined, now: Date, renewBeforeMs: number): boolean {
  const cert = parseCertificate(certPem);
  if (!cert) return true;
  return cert.validToDate.getTime() - now.getTime() <= renewBeforeMs;
}

/**
 * Whether the certificate's subject alternative names are exactly these DNS names and IP
 * addresses: a renamed Service (or a dropped name) calls for a new certificate.
 */
export function certificateMatches(
  certPem: string | undefined,
  dnsNames: readonly string[],
  ipAddresses: readonly string[] = [],
): boolean {
  const cert = parseCertificate(certPem);
  if (!cert) return false;
  const wanted = new Set([...dnsNames.map((name) => name.toLowerCase()), ...ipAddresses]);
  const present = (cert.subjectAltName ?? '').split(', ').filter((entry) => entry !== '');
  if (present.length !== wanted.size) return false;
  return (
    dnsNames.every((name) => cert.checkHost(name, { wildcards: false, subject: 'never' }) !== undefined) &&
    ipAddresses.every((ip) => cert.checkIP(ip) !== undefined)
  );
}

/** Whether `keyPem` is the private key of `certPem`. */
export function keyMatches(certPem: string | undefined, keyPem: string | undefined): boolean {
  const cert = parseCertificate(certPem);
  if (!cert || !keyPem) return false;
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** Whether `certPem` was issued and signed by `caPem`. */
export function isIssuedBy(certPem: string | undefined, caPem: string | undefined): boolean {
  const cert = parseCertificate(certPem);
  const ca = parseCertificate(caPem);
  if (!cert || !ca) return false;
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** Whether the certificate may sign others (basicConstraints CA:TRUE). */
export function isCertificateAuthority(pem: string | undefined): boolean {
  return parseCertificate(pem)?.ca === true;
}
