// Issuing the webhook's CA and serving certificates with @peculiar/x509 over Node's WebCrypto.
// ECDSA P-256 with SHA-256: instant to generate, accepted by the apiserver's Go TLS stack and by
// Node. No I/O; the manager decides when to issue and where the results go.
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type X509Crypto = Parameters<typeof x509.X509CertificateGenerator.create>[1];
const crypto = webcrypto as unknown as NonNullable<X509Crypto>;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/**
 * notBefore is set this far in the past, so a replica whose clock runs ahead of the apiserver's
 * does not issue a certificate the apiserver considers not yet valid.
 */
export const BACKDATE_MS = 60 * 60_000;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** A positive 128-bit serial number, hex. */
function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f || 0x01;
  return Buffer.from(bytes).toString('hex');
}

export async function createCertificateAuthority(options: {
  commonName: string;
  now: Date;
  validityMs: number;
}): Promise<PemPair> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: `CN=${options.commonName}`,
      notBefore: new Date(options.now.getTime() - BACKDATE_MS),
      notAfter: new Date(options.now.getTime() + options.validityMs),
      keys: keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/**
 * A serving certificate for `dnsNames` and `ipAddresses`, signed by `ca`. It never outlives the
 * CA: its notAfter is the earlier of now + validity and the CA's notAfter.
 */
export async function issueServingCertificate(options: {
  ca: PemPair;
  commonName: string;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  now: Date;
  validityMs: number;
}): Promise<PemPair> {
  const caCert = new x509.X509Certificate(options.ca.certPem);
  const caKey = await crypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(options.ca.keyPem),
    { name: ALGORITHM.name, namedCurve: ALGORITHM.namedCurve },
    false,
    ['sign'],
  );
  const keys = await generateKeys();
  const notAfter = Math.min(options.now.getTime() + options.validityMs, caCert.notAfter.getTime());
  const names: x509.JsonGeneralName[] = [
    ...options.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...options.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: `CN=${options.commonName}`,
      issuer: caCert.subject,
      notBefore: new Date(options.now.getTime() - BACKDATE_MS),
      notAfter: new Date(notAfter),
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false, crypto),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        new x509.SubjectAlternativeNameExtension(names, false),
      ],
    },
    crypto,
  );
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}
