// The certificate Secret's shape: a kubernetes.io/tls Secret (tls.crt, tls.key, plus ca.crt and
// ca.key), its write counter and the end of the previous CAs' retention as annotations. Pure.
import type * as k8s from '@kubernetes/client-node';
import type { CertificateContents, StoredCertificates } from './plan.ts';

export const GENERATION_ANNOTATION = 'entra-access.io/certificate-generation';
export const RETAIN_UNTIL_ANNOTATION = 'entra-access.io/previous-ca-trusted-until';

const KEYS: Record<keyof CertificateContents, string> = {
  tlsCrt: 'tls.crt',
  tlsKey: 'tls.key',
  caCrt: 'ca.crt',
  caKey: 'ca.key',
};

/** What the Secret holds; undefined fields for keys it lacks. */
export function decodeCertificateSecret(secret: k8s.V1Secret): StoredCertificates {
  const contents: Partial<CertificateContents> = {};
  for (const [field, key] of Object.entries(KEYS) as Array<[keyof CertificateContents, string]>) {
    const value = secret.data?.[key];
    if (value) contents[field] = Buffer.from(value, 'base64').toString('utf8');
  }
  const annotations = secret.metadata?.annotations ?? {};
  const generation = Number(annotations[GENERATION_ANNOTATION] ?? 0);
  const stored: StoredCertificates = {
    contents,
    generation: Number.isSafeInteger(generation) && generation > 0 ? generation : 0,
  };
  const retainUntil = new Date(annotations[RETAIN_UNTIL_ANNOTATION] ?? '');
  if (!Number.isNaN(retainUntil.getTime())) stored.retainUntil = retainUntil;
  return stored;
}

/** The Secret to write for `stored`; `resourceVersion` makes the write conditional. */
export function encodeCertificateSecret(options: {
  name: string;
  namespace: string;
  stored: StoredCertificates & { contents: CertificateContents };
  resourceVersion?: string;
}): k8s.V1Secret {
  const { stored } = options;
  const annotations: Record<string, string> = { [GENERATION_ANNOTATION]: String(stored.generation) };
  if (stored.retainUntil) annotations[RETAIN_UNTIL_ANNOTATION] = stored.retainUntil.toISOString();
  const data: Record<string, string> = {};
  for (const [field, key] of Object.entries(KEYS) as Array<[keyof CertificateContents, string]>) {
    data[key] = Buffer.from(stored.contents[field], 'utf8').toString('base64');
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: {
      name: options.name,
      namespace: options.namespace,
      ...(options.resourceVersion ? { resourceVersion: options.resourceVersion } : {}),
      labels: {
        'app.kubernetes.io/name': 'entra-access',
        'app.kubernetes.io/component': 'webhook-certificates',
        'app.kubernetes.io/managed-by': 'entra-access',
      },
      annotations,
    },
    data,
  };
}
