// The harness PKI is what every TLS hop in the integration tests trusts, so check its
// certificates have the shape kube-apiserver and Node's TLS demand (no I/O here).
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCertificateAuthority, createRsaSigningKeyPem, issueCertificate } from '../harness/pki.ts';

describe('harness PKI', () => {
  it('issues a server certificate that the CA verifies, with the requested names', async () => {
    const ca = await createCertificateAuthority('test CA');
    const leaf = await issueCertificate(ca, {
      commonName: 'webhook',
      usage: 'server',
      dnsNames: ['webhook.ns.svc', 'localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(leaf.certPem);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkHost('webhook.ns.svc')).toBe('webhook.ns.svc');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('other.example')).toBeUndefined();
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
  });

  it('puts the organization in a client certificate subject (how RBAC groups are carried)', async () => {
    const ca = await createCertificateAuthority('test CA');
    const leaf = await issueCertificate(ca, {
      commonName: 'admin',
      organization: 'system:masters',
      usage: 'client',
    });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.subject).toContain('CN=admin');
    expect(cert.subject).toContain('O=system:masters');
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // clientAuth
  });

  it('makes a PKCS#8 RSA signing key of 2048 bits for service-account tokens', async () => {
    const pem = await createRsaSigningKeyPem();
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const { createPrivateKey } = await import('node:crypto');
    const key = createPrivateKey(pem);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });
});
