// What the certificate Secret should hold next, decided from what it holds now. Pure: the
// manager reads the Secret, asks planCertificates what to do, issues what the plan says, and
// composes the new CA bundle with nextBundle.
//
// Rotation keeps trust continuous: a new CA enters the bundle (ca.crt, and the webhook
// configuration's caBundle) in front of the CAs it replaces, and those stay until every serving
// certificate they signed has expired, so a replica still serving the old certificate is trusted
// while it reloads.
import {
  certificateMatches,
  expiresAt,
  fingerprint,
  isCertificateAuthority,
  isIssuedBy,
  keyMatches,
  needsRenewal,
  parseCertificate,
  splitPemCertificates,
} from './inspect.ts';

/** The data of the certificate Secret (keys tls.crt, tls.key, ca.crt, ca.key). */
export interface CertificateContents {
  /** The serving certificate. */
  tlsCrt: string;
  tlsKey: string;
  /** The CA bundle: the current CA first, then previous CAs still trusted during a rotation. */
  caCrt: string;
  /** The current CA's key, so every replica can renew the serving certificate under the same CA. */
  caKey: string;
}

export interface StoredCertificates {
  contents: Partial<CertificateContents>;
  /** Counts the Secret's writes; the webhook configuration records the one its bundle came from. */
  generation: number;
  /** Previous CAs in the bundle are trusted until then. */
  retainUntil?: Date;
}

export interface CertificateSettings {
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  renewBeforeMs: number;
}

/** A renewal asked for by an operator or a test, whatever the certificates' state. */
export type ForcedRenewal = 'serving' | 'ca';

export type CertificatePlan =
  | { action: 'keep' }
  /** A new CA, and a serving certificate from it; the previous CAs stay in the bundle for now. */
  | { action: 'rotate-ca'; reason: string }
  /** A new serving certificate from the current CA; the bundle is unchanged. */
  | { action: 'issue-serving'; reason: string }
  /** The previous CAs' time is over: the bundle becomes the current CA alone. */
  | { action: 'prune-bundle'; reason: string };

/** At least this long after a rotation the previous CA stays trusted, so every replica can reload. */
export const RELOAD_GRACE_MS = 10 * 60_000;

export function currentCa(contents: Partial<CertificateContents> | undefined): string | undefined {
  return splitPemCertificates(contents?.caCrt)[0];
}

export function planCertificates(
  stored: StoredCertificates | undefined,
  now: Date,
  settings: CertificateSettings,
  force?: ForcedRenewal,
): CertificatePlan {
  if (!stored) return { action: 'rotate-ca', reason: 'there is no certificate Secret yet' };
  const { contents } = stored;
  const ca = currentCa(contents);
  if (!ca || !isCertificateAuthority(ca) || !keyMatches(ca, contents.caKey)) {
    return { action: 'rotate-ca', reason: 'the Secret holds no usable CA certificate and key' };
  }
  if (force === 'ca') return { action: 'rotate-ca', reason: 'a CA rotation was requested' };
  if (needsRenewal(ca, now, settings.renewBeforeMs)) {
    return { action: 'rotate-ca', reason: `the CA expires at ${expiresAt(ca)?.toISOString()}` };
  }
  if (!keyMatches(contents.tlsCrt, contents.tlsKey)) {
    return { action: 'issue-serving', reason: 'the Secret holds no usable serving certificate and key' };
  }
  if (!isIssuedBy(contents.tlsCrt, ca)) {
    return { action: 'issue-serving', reason: 'the serving certificate was not issued by the current CA' };
  }
  if (force === 'serving') return { action: 'issue-serving', reason: 'a renewal was requested' };
  if (needsRenewal(contents.tlsCrt, now, settings.renewBeforeMs)) {
    return {
      action: 'issue-serving',
      reason: `the serving certificate expires at ${expiresAt(contents.tlsCrt)?.toISOString()}`,
    };
  }
  if (!certificateMatches(contents.tlsCrt, settings.dnsNames, settings.ipAddresses)) {
    return {
      action: 'issue-serving',
      reason: `the serving certificate does not name exactly ${[...settings.dnsNames, ...settings.ipAddresses].join(', ')}`,
    };
  }
  const previous = splitPemCertificates(contents.caCrt).length - 1;
  if (previous > 0 && (stored.retainUntil === undefined || now >= stored.retainUntil)) {
    return {
      action: 'prune-bundle',
      reason: `the ${previous} previous CA(s) were trusted until ${stored.retainUntil?.toISOString() ?? 'the rotation ended'}`,
    };
  }
  return { action: 'keep' };
}

export interface Bundle {
  caCrt: string;
  retainUntil?: Date;
}

/**
 * The CA bundle after a plan's action, with `ca` the CA the new serving certificate comes from.
 * - rotate-ca: `ca` first, then the previous bundle's CAs (or, with no Secret, `adopted`: the CAs
 *   the webhook configuration trusts now), kept until the later of the previous serving
 *   certificate's expiry and RELOAD_GRACE_MS from now. Adopted CAs, whose serving certificates are
 *   unknown, are kept until their own expiry, at most `adoptedRetentionMs` from now.
 * - issue-serving: the bundle as it is, less what has expired or outlived its retention.
 * - prune-bundle: `ca` alone.
 * Expired and duplicate CAs are always dropped.
 */
export function nextBundle(options: {
  action: Exclude<CertificatePlan['action'], 'keep'>;
  ca: string;
  stored: StoredCertificates | undefined;
  adopted?: readonly string[];
  adoptedRetentionMs: number;
  now: Date;
}): Bundle {
  const { action, ca, stored, now } = options;
  const stillTrusted = (retainUntil: Date | undefined) => retainUntil !== undefined && now < retainUntil;
  let previous: string[];
  let retainUntil: Date | undefined;
  if (action === 'prune-bundle') {
    previous = [];
  } else if (action === 'issue-serving') {
    previous = stillTrusted(stored?.retainUntil) ? splitPemCertificates(stored?.contents.caCrt).slice(1) : [];
    retainUntil = stored?.retainUntil;
  } else if (stored) {
    const [oldCa, ...older] = splitPemCertificates(stored.contents.caCrt);
    previous = [...(oldCa ? [oldCa] : []), ...(stillTrusted(stored.retainUntil) ? older : [])];
    const candidates = [
      now.getTime() + RELOAD_GRACE_MS,
      expiresAt(stored.contents.tlsCrt)?.getTime() ?? 0,
      stillTrusted(stored.retainUntil) ? (stored.retainUntil?.getTime() ?? 0) : 0,
    ];
    retainUntil = new Date(Math.max(...candidates));
  } else {
    previous = [...(options.adopted ?? [])];
    const latest = Math.max(0, ...previous.map((pem) => expiresAt(pem)?.getTime() ?? 0));
    retainUntil = new Date(Math.min(latest, now.getTime() + options.adoptedRetentionMs));
  }

  const seen = new Set<string>();
  const kept: string[] = [];
  for (const pem of [ca, ...previous]) {
    const cert = parseCertificate(pem);
    const id = fingerprint(pem);
    if (!cert || !id || seen.has(id)) continue;
    if (pem !== ca && cert.validToDate <= now) continue;
    seen.add(id);
    kept.push(pem.endsWith('\n') ? pem : `${pem}\n`);
  }
  const bundle: Bundle = { caCrt: kept.join('') };
  if (kept.length > 1 && retainUntil && now < retainUntil) bundle.retainUntil = retainUntil;
  else bundle.caCrt = kept[0] ?? '';
  return bundle;
}
